"""The documents and metadata columns given to ``SAETM.fit``, checked, and the texts a fitted model keeps.

Functions of plain values; the estimator calls them first (text → embeddings → atoms → ...).
"""

from __future__ import annotations

import logging

from saetm.errors import SaetmError

log = logging.getLogger("saetm")


def check_documents(documents) -> list[str]:
    """The documents as a list of strings (a :class:`saetm.io.lazy_texts.JsonlTexts` as it
    is), or a one-line SaetmError; warns about empty ones."""
    if isinstance(documents, (str, bytes)):
        raise SaetmError("documents must be a list of strings, not a single string")
    if getattr(documents, "lazy", False):  # texts left in a file (saetm.io.lazy_texts): checked as they were read
        empty = int((~documents.nonblank()).sum())
        if empty == len(documents):
            raise SaetmError("all documents are empty")
        if empty:
            log.warning("%d of %d documents are empty; they get no topic unless their embeddings are given",
                        empty, len(documents))
        return documents
    try:
        docs = list(documents)
    except TypeError:
        raise SaetmError(f"documents must be a list of strings, got {type(documents).__name__}") from None
    if not docs:
        raise SaetmError("no documents given; pass a non-empty list of strings")
    bad = [i for i, d in enumerate(docs) if not isinstance(d, str)]
    if bad:
        raise SaetmError(
            f"{len(bad)} documents are not strings (first at position {bad[0]}: {type(docs[bad[0]]).__name__}); "
            "convert or drop them first (saetm.io.readers.read_documents does this for files)"
        )
    empty = [i for i, d in enumerate(docs) if not d.strip()]
    if len(empty) == len(docs):
        raise SaetmError("all documents are empty")
    if empty:
        log.warning("%d of %d documents are empty; they get no topic unless their embeddings are given",
                    len(empty), len(docs))
    return docs


def check_metadata(n_docs: int, **columns) -> dict:
    """``{column name without its plural s: list or None}``; each column must have ``n_docs`` entries."""
    meta = {}
    for name, values in columns.items():
        if values is None:
            meta[name.rstrip("s")] = None
            continue
        values = list(values)
        if len(values) != n_docs:
            raise SaetmError(f"{name} has {len(values)} entries but there are {n_docs} documents")
        meta[name.rstrip("s")] = values
    return meta


#: characters of text a fitted model keeps whole; beyond, it keeps each text cut to what
#: documents.parquet saves (:data:`saetm.io.documents.TEXT_CHARS`), as a loaded model does
KEEP_TEXT_CHARS = 1 << 28


def kept_texts(docs) -> tuple[list[str], bool]:
    """The texts a fitted model keeps for representative documents and reports, and whether
    they were cut: all of them up to :data:`KEEP_TEXT_CHARS` characters in all, else each cut
    (texts left in a file: a list of them, else their :meth:`~saetm.io.lazy_texts.JsonlTexts.cut`,
    still in the file)."""
    from saetm.io.documents import TEXT_CHARS

    lazy = getattr(docs, "lazy", False)  # texts left in a file (saetm.io.lazy_texts)
    if (docs.total_chars if lazy else sum(map(len, docs))) <= KEEP_TEXT_CHARS:
        return list(docs) if lazy else docs, False
    log.info("%d documents: the model keeps their texts cut to %d characters", len(docs), TEXT_CHARS)
    return docs.cut(TEXT_CHARS) if lazy else [d[:TEXT_CHARS] for d in docs], True
