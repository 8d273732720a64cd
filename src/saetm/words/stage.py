"""Stage 2: the vocabulary and the atoms' word distributions (atoms → word distributions).

Functions of plain values: the documents, θ, the counts and the settings (the vocabulary's,
and a :class:`saetm.components.Words`); they return arrays and a :class:`WordModel`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import scipy.sparse as sp

log = logging.getLogger("saetm")


def check_word_diversity(value) -> float:
    """``words.diversity`` as a float ≥ 0 (finite), or a one-line SaetmError."""
    from saetm.settings import check

    return check("words.diversity", value)


def vocabulary(docs: Sequence[str], *, min_df, max_df, max_features, stop_words, extra_stop_words, lemmatize,
               merge_inflections):
    """``(vocab, counts)`` of ``docs`` (:func:`saetm.words.vocab.build_vocabulary` with these
    settings); warns about non-empty documents without a vocabulary word."""
    from saetm.words.vocab import build_vocabulary

    vocab, counts = build_vocabulary(docs, min_df=min_df, max_df=float(max_df), max_features=max_features,
                                     stop_words=stop_words, extra_stop_words=extra_stop_words,
                                     lemmatize=lemmatize, merge_inflections=merge_inflections)
    if getattr(docs, "lazy", False):  # texts left in a file: not read again for this
        wordless = int(np.count_nonzero((np.diff(counts.indptr) == 0) & docs.nonblank()))
    else:
        wordless = int(sum(1 for d, n in zip(docs, np.diff(counts.indptr)) if n == 0 and d.strip()))
    if wordless:
        log.warning("%d of %d documents contain no vocabulary word; they still get topics from their embeddings "
                    "but do not shape the topics' words (lower --min-df (min_df) to include more words)",
                    wordless, len(docs))
    return vocab, counts


def reference_tokens(texts: Sequence[str], *, stop_words, extra_stop_words, lemmatize,
                     merged_vocab=None) -> list[list[str]]:
    """The tokens of ``texts`` that stage 2 counts with these settings, for NPMI / C_V
    (``merged_vocab``: the fitted vocabulary when inflections were merged, else None)."""
    from saetm.evaluation.scorecard import reference_tokens as tokens

    return tokens(texts, stop_words, extra_stop_words=extra_stop_words, lemmatize=lemmatize,
                  merged_vocab=merged_vocab)


@dataclass
class WordModel:
    """What stage 2 learns: θ (n_docs, n_atoms), the atoms' word distributions B (n_atoms, V),
    the background distribution, each atom's prevalence θ̄, and a summary of the EM run."""

    theta: sp.csr_matrix
    feature_words: sp.csr_matrix
    background: np.ndarray
    feature_prob: np.ndarray
    info: dict


def feature_words(theta: sp.csr_matrix, counts: sp.csr_matrix, words) -> WordModel:
    """The atoms' word distributions by EM (:func:`saetm.words.em.fit_feature_words`) with the
    settings of ``words`` (a :class:`saetm.components.Words`); under torchrun each process runs
    the E-step over its block of documents."""
    from saetm.encoders.embed import distributed
    from saetm.words.em import fit_feature_words

    settings = dict(background_weight=words.background_weight, idf=words.idf, max_iter=words.em_max_iter,
                    tol=words.em_tol)
    if distributed():  # torchrun: each process runs the E-step over its block of documents
        from saetm.sae.distributed import process_info
        from saetm.words.distributed import fit_feature_words_distributed

        info = process_info()
        lo, hi = (theta.shape[0] * r // info.world_size for r in (info.rank, info.rank + 1))
        fw = fit_feature_words_distributed(theta[lo:hi], counts[lo:hi], **settings)
    else:
        fw = fit_feature_words(theta, counts, **settings)
    info = {"n_iter": int(fw.n_iter), "converged": bool(fw.converged),
            "nll_per_token": float(fw.nll_history[-1]) if len(fw.nll_history) else None,
            "n_used_atoms": int((fw.feature_prob > 0).sum()), "vocabulary_size": int(counts.shape[1])}
    return WordModel(theta=theta, feature_words=fw.feature_words, background=fw.background,
                     feature_prob=fw.feature_prob, info=info)
