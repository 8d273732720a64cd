"""``saetm topics``: print the topic table (or topics.json) of a fitted model."""

from __future__ import annotations

from saetm.cli._common import _print_topics


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
