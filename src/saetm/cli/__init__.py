"""The ``saetm`` command line, a thin layer over :class:`saetm.model.SAETM`.

Exit codes: 0 success, 2 a problem with the input or settings (one-line message on
stderr, no traceback unless ``--debug``), 130 interrupted.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from saetm._version import __version__
from saetm.cli._common import (  # noqa: F401  (names callers import from saetm.cli)
    DEMO_OUT, _aligned, _Parser, _positive_float, _positive_int, _print_topics, _read_embeddings_for,
    _refuse_existing, log)
from saetm.cli.demo import cmd_demo
from saetm.cli.evaluate import _read_labels, cmd_evaluate  # noqa: F401
from saetm.cli.fit import (  # noqa: F401
    IMAGE_SAE_DEFAULTS, IMAGE_SUFFIXES, _image_collection, _import_training, _is_image_input, _model_from_args, cmd_fit)
from saetm.cli.report import _period_freq, cmd_report
from saetm.cli.retopic import cmd_retopic
from saetm.cli.topics import cmd_topics
from saetm.cli.train_sae import cmd_train_sae
from saetm.cli.transform import cmd_transform
from saetm.errors import SaetmError


def build_parser() -> argparse.ArgumentParser:
    from saetm.cli.flags import add_setting_flags

    p = _Parser(prog="saetm", description="Topic modelling with sparse autoencoders (SAE-TM).")
    p.add_argument("--version", action="version", version=f"saetm {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show full tracebacks")
    common.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    common.add_argument("--words", type=_positive_int, default=10, help="top words to print per topic (default 10)")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser, metavar="COMMAND",
                           help="one of the commands below; `saetm COMMAND --help` lists its options")

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
    add_setting_flags(f)  # one per row of saetm.settings.TABLE
    f.add_argument("--holdout", type=float, metavar="F",
                   help="hold out a share F (0-1) of the documents, chosen with --seed: fit on the rest, and "
                   "`saetm evaluate` scores NPMI / C_V on the held-out ones too (their input rows are kept in "
                   "model.json; without --id-field each document's id is its input row)")
    f.add_argument("--overwrite", action="store_true", help="replace a model already in --out")
    f.set_defaults(func=cmd_fit)

    r = sub.add_parser("retopic", parents=[common],
                       help="change the number of topics or the word diversity of a fitted model (no refit)")
    r.add_argument("dir", help="model directory written by `saetm fit`; its topic files are rewritten")
    r.add_argument("--topics", type=_positive_int, default=None, help="the new number of topics")
    r.add_argument("--word-diversity", type=float, default=None, metavar="P",
                   help="re-rank the topics' words with this repeat penalty (see fit --word-diversity)")
    r.set_defaults(func=cmd_retopic)

    t = sub.add_parser("topics", parents=[common], help="print the topic table of a fitted model")
    t.add_argument("dir", help="model directory written by `saetm fit`")
    t.add_argument("--json", action="store_true", help="print topics.json instead of a table")
    t.set_defaults(func=cmd_topics)

    x = sub.add_parser("transform", parents=[common], help="topic weights for new documents")
    x.add_argument("dir", help="model directory written by `saetm fit`")
    x.add_argument("input", help="documents to weigh: any input `saetm fit` reads")
    x.add_argument("--out", required=True, help=".npz (sparse weights) or .csv/.tsv/.jsonl/.parquet (a table)")
    x.add_argument("--text-field", help="column with the text (default: detected)")
    x.add_argument("--id-field", help="column with document ids for the table's id column "
                   "(default: the row number, or the file name in a folder of .txt files)")
    x.add_argument("--embeddings", help=".npy of precomputed embeddings from the model's encoder, "
                   "one row per document")
    x.add_argument("--top", type=_positive_int, metavar="N",
                   help="tables: the N topics of highest weight per document, as topic, weight, label, "
                   "topic_2, weight_2, label_2, ... (default 3)")
    x.set_defaults(func=cmd_transform)

    ts = sub.add_parser("train-sae", parents=[common], help="train an SAE on embedding files (also under torchrun)")
    ts.add_argument("embeddings", nargs="+", metavar="EMBEDDINGS",
                    help=".npy files (memory-mapped), .parquet files, or folders of such shards")
    ts.add_argument("--out", required=True, help="folder to write sae.safetensors + sae.json to")
    ts.add_argument("--arch", default="batchtopk", choices=["topk", "batchtopk", "relu", "jumprelu"],
                    help="SAE architecture (default batchtopk)")
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
    ts.add_argument("--seed", type=int, default=0, help="seed of the initialisation and batch order (default 0)")
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
    d.add_argument("--topics", type=_positive_int, default=20, help="number of topics (default 20)")
    d.add_argument("--seed", type=int, default=0, help="seed of the document sample and the fit (default 0)")
    d.set_defaults(func=cmd_demo)

    rp = sub.add_parser("report", parents=[common], help="write a self-contained HTML report of a fitted model")
    rp.add_argument("dir", help="model directory written by `saetm fit`")
    rp.add_argument("--out", help="HTML file to write (default: DIR/report.html)")
    rp.add_argument("--freq", type=_period_freq, help="periods over time: D, W, M, Q, Y, decade or a number of bins "
                    "(default: chosen from the dates kept by `saetm fit --date-field`)")
    rp.add_argument("--topics", type=_positive_int, help="report this many topics (no refit; the model is not changed)")
    rp.add_argument("--title", help="page title")
    rp.set_defaults(func=cmd_report)
    ev = sub.add_parser("evaluate", parents=[common], help="score a fitted model's topics (coherence, diversity, "
                        "agreement with labels, optionally an LLM judge)")
    ev.add_argument("dir", help="model directory written by `saetm fit`")
    ev.add_argument("--reference", help="corpus for NPMI / C_V, any input `saetm fit` reads (default: the fitted "
                    "documents kept in DIR, or, when some were cut to 1,000 characters, the file `saetm fit` read, "
                    "if unchanged). A model fitted with --holdout is also scored on its held-out rows of that file "
                    "(npmi_heldout, cv_heldout)")
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
    except BrokenPipeError:  # the reader of the output left (`saetm topics m | head`): nothing was wrong
        try:  # no second error when Python flushes stdout at exit
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):  # stdout without a file (captured, closed)
            pass
        return 141  # as a shell reports a tool stopped by SIGPIPE
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
