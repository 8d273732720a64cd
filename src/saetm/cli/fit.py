"""``saetm fit``: fit a topic model on documents or images and save it."""

from __future__ import annotations

import contextlib
from pathlib import Path

from saetm.cli._common import (_aligned, _fit_summary, _must_exist, _print_topics, _read_embeddings_for,
                               _refuse_existing, log)
from saetm.errors import SaetmError


def cmd_fit(args) -> int:
    from saetm.checks import check_before_data, npy_width
    from saetm.io.provenance import input_record
    from saetm.io.readers import read_documents
    from saetm.model_files import directory_lock
    from saetm.encoders.embed import make_encoder
    from saetm.settings import check_params

    out = Path(args.out)
    world = _join_process_group()  # torchrun: every process runs this; rank 0 writes and prints
    args.quiet = args.quiet or not world.is_main
    if world.is_main:  # the input is never replaced, even with --overwrite; checked before the fit runs
        _refuse_existing(out, args.overwrite, inputs=[p for p in (args.input, args.embeddings) if p])
    model = _model_from_args(args)
    holdout = getattr(args, "holdout", None)
    if holdout is not None:
        from saetm.evaluation.holdout import check_fraction

        check_fraction(holdout)
        if _is_image_input(args):
            raise SaetmError("--holdout scores held-out words, so it needs a document input, not images; "
                             "leave it out for an image collection")
    check_params(model)  # settings first: a typo should not cost a read of a large corpus
    check_before_data(model, "image" if _is_image_input(args) else make_encoder(model.encoder).name,
                      npy_width(args.embeddings), given=args.embeddings is not None)
    _must_exist(args.input, args.embeddings)  # and missing files, before torch is imported (seconds)
    _import_training()
    # Locked for the whole run, so a second `fit` into the same --out refuses at once
    # instead of after hours; the directory is removed again if nothing gets written.
    with directory_lock(out) if world.is_main else contextlib.nullcontext():
        source = None
        if _is_image_input(args):
            texts, embeddings, meta, name = _image_collection(args)
        else:
            if Path(args.input).exists():  # else the reader says what is wrong
                source = input_record(args.input)  # hashed before it is read: a later edit shows
            corpus = read_documents(args.input, text_field=args.text_field, id_field=args.id_field,
                                    date_field=args.date_field, label_field=args.label_field,
                                    lazy_text=True)  # JSON Lines: texts read again from the file when used
            text_field = corpus.extra["text_field"]
            texts, meta = _aligned(corpus)
            del corpus
            embeddings = _read_embeddings_for(len(texts), args.embeddings)  # memory-mapped
            name = None
        # No name here holds the texts during the fit, which can then keep them cut short
        # (a large corpus) once their words are counted.
        n_input, held = len(texts), [texts]
        del texts
        model.fit(held.pop(), embeddings, embedding_name=name, holdout=holdout, **meta)
        if source is not None:  # kept for `saetm evaluate`: the model keeps its texts cut short
            model.input_ = {**source, "text_field": text_field}
        if model.heldout_ is not None and model.input_ is not None:  # rows left out, scored by `saetm evaluate`
            model.input_["holdout"] = model.heldout_
            if world.is_main:
                log.info("held out %d of %d input rows (--holdout %g, --seed %d); `saetm evaluate %s` scores the "
                         "topics on them", len(model.heldout_["rows"]), n_input, holdout, model.seed, out)
        if world.is_main:
            model.save(out, overwrite=args.overwrite)
    _leave_process_group(world)
    if not world.is_main:
        return 0
    _print_topics(model, args.words)
    if not args.quiet:
        print(f"\n{_fit_summary(model, args.out)}")
    log.info("saved the model, topics.json and doc_topics.npz to %s", out)
    return 0


def _join_process_group():
    """Join torchrun's process group (gloo: the fit trains on the CPU) when there is one;
    the processes other than rank 0 stay quiet."""
    import os

    if int(os.environ.get("WORLD_SIZE", "1") or 1) <= 1:  # without importing torch (a mistake fails in ms)
        from types import SimpleNamespace

        return SimpleNamespace(rank=0, world_size=1, is_main=True, enabled=False)
    import logging

    from saetm.sae.distributed import init_distributed

    world = init_distributed(backend="gloo")
    if not world.is_main:
        log.setLevel(logging.WARNING)
    else:
        log.info("fitting on %d processes (torchrun)", world.world_size)
    return world


def _leave_process_group(world) -> None:
    if world.enabled:
        from saetm.sae.distributed import shutdown

        shutdown()


def _import_training() -> None:
    """Finish torch's lazy imports before the run starts: the first optimizer imports
    torch._dynamo, and a Ctrl-C that lands inside that import (it runs Python code from
    C++) aborts the process instead of raising KeyboardInterrupt."""
    import torch

    torch.optim.Adam([torch.zeros(1, requires_grad=True)])


# Image embeddings are wide (1,280-d for the default encoder): 16 × d atoms would be
# slow on a CPU and far more than a few thousand images can train. These defaults
# gave topics whose words match the images' keywords 3× better than chance on Open Clip Art.
IMAGE_SAE_DEFAULTS = {"n_atoms": 2048, "k": 16, "steps": 500}


def _model_from_args(args):
    """The ``SAETM`` the flags ask for: the settings given (:mod:`saetm.cli.flags`), the
    table's defaults for the rest; images train an SAE of :data:`IMAGE_SAE_DEFAULTS`."""
    from saetm.cli.flags import given_settings, model_settings
    from saetm.model import SAETM

    given = given_settings(args)
    kwargs = model_settings(given, IMAGE_SAE_DEFAULTS if _is_image_input(args) else None)
    return SAETM(**kwargs, verbose=not args.quiet)


def _is_image_input(args) -> bool:
    """Images when --image-field is given, or INPUT is a folder that holds images."""
    if getattr(args, "image_field", None):
        return True
    path = Path(args.input)
    return path.is_dir() and any(p.suffix.lower() in IMAGE_SUFFIXES for p in path.rglob("*"))


IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff"}


def _image_collection(args):
    """Read an image manifest or folder and embed its images (or take --embeddings).
    Returns texts, embeddings, the keyword arguments of ``SAETM.fit`` (metadata, and
    ``embedding_rows``: the document of each embedding) and the name of what made the
    embeddings.

    Outputs keep one row per manifest row (per image of a folder): a row without an
    image or whose image cannot be read is an empty document, with no embedding and
    no topic, so row i of doc_topics.npz is row i of the input."""
    import numpy as np

    from saetm.encoders.image import ImageEncoder, encode_images
    from saetm.io.images import read_image_collection

    text_field = args.text_field.split(",") if args.text_field and "," in args.text_field else args.text_field
    corpus = read_image_collection(args.input, image_field=args.image_field, text_field=text_field,
                                   date_field=args.date_field, label_field=args.label_field, id_field=args.id_field)
    images = list(corpus.extra["images"])
    if args.embeddings:  # precomputed: one row per image read (manifest rows with an image)
        X = _read_embeddings_for(len(corpus), args.embeddings)
        ok = np.arange(len(corpus))
        name = f"precomputed:{Path(args.embeddings).name}"
    else:
        encoder = ImageEncoder(args.image_encoder)
        X, ok, _ = encode_images(encoder, images, show_progress=not args.quiet)  # logs what it skipped
        name = f"image:{encoder.name}"
        failed = np.setdiff1d(np.arange(len(corpus)), ok)
        for i in failed:
            corpus.texts[i], images[i] = "", None  # no words or image of its own in the outputs
        if failed.size:
            log.info("the %d rows whose image cannot be read keep their place in the outputs, with no topic",
                     failed.size)
    corpus.extra.setdefault("row_index", list(range(len(corpus))))  # a folder: one row per image
    texts, meta = _aligned(corpus)
    meta["images"] = [None] * len(texts)
    for r, image in zip(corpus.extra["row_index"], images):
        meta["images"][r] = image  # image paths are kept for the report's thumbnails
    meta["embedding_rows"] = np.asarray(corpus.extra["row_index"], dtype=np.int64)[ok]
    return texts, X, meta, name
