"""``saetm transform``: topic weights of new documents, as sparse .npz or a table."""

from __future__ import annotations

from pathlib import Path

from saetm.cli._common import _aligned, _must_exist, _read_embeddings_for, log
from saetm.errors import SaetmError


def cmd_transform(args) -> int:
    if (Path(args.dir) / "model.json").is_file():  # else load says what is wrong with DIR, first
        _must_exist(args.input, args.embeddings)  # before the model and the readers are imported
    from saetm.io.persist import atomic_write, write_npz
    from saetm.io.readers import read_documents
    from saetm.model import SAETM
    from saetm.model_files import load_model
    from saetm.topic_table import seal_holds

    out = Path(args.out)
    suffix = out.suffix.lower()
    if suffix not in (".npz", ".csv", ".tsv", ".jsonl", ".parquet"):
        raise SaetmError(f"--out {out.name}: use .npz (sparse topic weights) or .csv/.tsv/.jsonl/.parquet (a table)")
    if suffix == ".npz" and args.top is not None:
        log.warning("--top shapes the tables; %s keeps the weights of every topic", out.name)
    # the fitted texts play no part in new documents' weights: documents.parquet is read only when
    # the seal does not vouch for it
    sealed = seal_holds(args.dir)
    model = load_model(SAETM, Path(args.dir), documents=not sealed)
    model.verbose = not args.quiet
    labels = _table_labels(Path(args.dir), model.n_topics) if sealed and suffix != ".npz" else None
    # JSON Lines: the texts stay in the file and are read a block at a time
    corpus = read_documents(args.input, text_field=args.text_field, id_field=args.id_field, lazy_text=True)
    texts, meta = _aligned(corpus)
    embeddings = _read_embeddings_for(len(texts), args.embeddings)
    W = transform_blocks(model, texts, embeddings)
    if suffix == ".npz":
        write_npz(out, W)
    else:
        info = model.describe_weights(W, top=args.top or 3, labels=labels)
        info.insert(0, "id", meta["ids"])
        with atomic_write(out, "w" if suffix != ".parquet" else "wb") as f:
            if suffix == ".parquet":
                info.to_parquet(f, index=False)
            elif suffix == ".jsonl":
                info.to_json(f, orient="records", lines=True, force_ascii=False)
            else:
                info.to_csv(f, sep="\t" if suffix == ".tsv" else ",", index=False)
    log.info("wrote topic weights of %d documents to %s", W.shape[0], out)
    return 0


#: documents transformed at a time: memory holds one block's texts, embeddings and activations
BLOCK_ROWS = 8192


def transform_blocks(model, texts, embeddings=None, block_rows: int = BLOCK_ROWS):
    """``model.transform`` over ``BLOCK_ROWS`` input rows at a time, stacked: the same
    ``(n_rows, T)`` weights as one call. Given embeddings (memory-mapped by the CLI) stand for
    the texts, which then give only their words (a block of empty texts: none); without them,
    empty texts are left out of each block and get an empty row."""
    import numpy as np
    import scipy.sparse as sp

    from saetm.io.inputs import check_documents

    if embeddings is None:
        check_documents(texts)  # "all documents are empty", and one warning for the empty ones
    parts = []
    for start in range(0, len(texts), block_rows):
        stop = min(start + block_rows, len(texts))
        block = texts[start:stop]
        if embeddings is not None:
            words = block if any(t.strip() for t in block) else None
            parts.append(model.transform(words, np.asarray(embeddings[start:stop])))
            continue
        keep = [i for i, t in enumerate(block) if t.strip()]
        W = model.transform([block[i] for i in keep]) if keep else sp.csr_matrix((0, model.n_topics), dtype=np.float32)
        place = sp.csr_matrix((np.ones(len(keep), W.dtype), (keep, np.arange(len(keep)))),
                              shape=(stop - start, len(keep)))  # the kept rows back in their places
        parts.append((place @ W).tocsr())
    return sp.vstack(parts, format="csr")


def _table_labels(directory: Path, n_topics: int) -> list[str] | None:
    """The topic labels of the sealed ``topics.json`` (what ``topic_labels()`` gave when it was
    written, custom labels included), so that the table's labels need no ranking of the words,
    which reads every atom's word distribution; None when the file does not hold one label per
    topic."""
    import json

    try:
        labels = [t["label"] for t in json.loads((directory / "topics.json").read_bytes())["topics"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return labels if len(labels) == n_topics and all(isinstance(x, str) for x in labels) else None
