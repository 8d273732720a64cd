"""``saetm report``: a self-contained HTML report of a fitted model."""

from __future__ import annotations

import argparse
from pathlib import Path

from saetm.cli._common import log


def cmd_report(args) -> int:
    from saetm.model import SAETM

    model = SAETM.load(args.dir)
    dates = (model.documents_ or {}).get("date")
    if args.freq is not None and dates is not None:  # asked for: refuse a --freq that cannot apply
        from saetm.analysis.time import assign_periods

        assign_periods(dates, args.freq)
    if args.topics is not None and args.topics != model.n_topics:
        model.retopic(args.topics)  # in memory only; the model directory is left as it is
    out = Path(args.out) if args.out else Path(args.dir) / "report.html"
    model.report(out, freq=args.freq, title=args.title)
    log.info("wrote the report of %d topics to %s", model.n_topics, out)
    return 0


def _period_freq(text: str):
    from saetm.analysis.time import FREQS

    if text.isdigit() and int(text) > 0:
        return int(text)
    if text in FREQS:
        return text
    raise argparse.ArgumentTypeError(f"use one of {', '.join(FREQS)} or a number of equal-width bins, got {text!r}")
