"""Silence what Hugging Face libraries print while a model loads, for quiet runs."""

from __future__ import annotations

import warnings
from contextlib import contextmanager


@contextmanager
def quiet_loading(quiet: bool = True):
    """While the block runs, hide the progress bars of transformers and huggingface_hub
    (the "Loading weights" bar) and their notices below errors (load reports), then
    restore their settings: a library call must not change them for the caller.

    Imports transformers, so call it only where a model is about to be loaded."""
    if not quiet:
        yield
        return
    import importlib

    from transformers.utils import logging as hf_logging

    # the module; `from huggingface_hub.utils import tqdm` gives a class of that name
    hub_tqdm = importlib.import_module("huggingface_hub.utils.tqdm")

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hub_states = dict(hub_tqdm.progress_bar_states)
    hf_logging.set_verbosity_error()
    with warnings.catch_warnings():  # HF_HUB_DISABLE_PROGRESS_BARS=0 makes it warn; the bars stay, that is all
        warnings.simplefilter("ignore")
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if bars:
                hf_logging.enable_progress_bar()
        hub_tqdm.progress_bar_states.clear()
        hub_tqdm.progress_bar_states.update(hub_states)
