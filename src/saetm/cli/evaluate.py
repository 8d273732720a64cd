"""``saetm evaluate``: score a fitted model's topics and write DIR/evaluation.json.

A model fitted with ``saetm fit --holdout`` is also scored on its held-out input rows
(``npmi_heldout``, ``cv_heldout``), read again from the input ``fit`` recorded."""

from __future__ import annotations

from pathlib import Path

from saetm._version import __version__
from saetm.cli._common import _aligned, log
from saetm.errors import SaetmError


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
    if "heldout" in record and not args.json:
        log.info("npmi_heldout / cv_heldout: on the %s", record["heldout"])
    record = jsonable({"saetm_version": __version__,
                       "evaluated_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                       "judge": {"url": args.judge, "model": args.judge_model} if judge else None, **record})
    if args.json:
        print(json.dumps({k: record[k] for k in ("measures", "n_topics", "top_n", "reference", "heldout", "notes")
                          if k in record},
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
