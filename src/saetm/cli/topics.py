"""``saetm topics``: print the topic table (or topics.json) of a fitted model."""

from __future__ import annotations

import json

from saetm.topic_table import print_saved_topics, print_table  # light: reads JSON, imports no model code


def cmd_topics(args) -> int:
    """``saetm topics DIR``: the sealed ``topics.json`` when it serves, else the loaded model."""
    if print_saved_topics(args.dir, args.words, as_json=args.json):
        return 0
    from saetm.model import SAETM
    from saetm.model_files import topics_json

    model = SAETM.load(args.dir)
    if args.json:
        print(json.dumps(topics_json(model, args.words), indent=2, ensure_ascii=False))
    else:
        print_table(model.get_topic_info(n_words=args.words).to_dict("records"))
    return 0
