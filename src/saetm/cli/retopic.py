"""``saetm retopic``: change the number of topics or the word diversity of a fitted model."""

from __future__ import annotations

from pathlib import Path

from saetm.cli._common import log
from saetm.errors import SaetmError


def cmd_retopic(args) -> int:
    from saetm.model import SAETM
    from saetm.model_files import MODEL_FILE, directory_lock, load_model, save_topics
    from saetm.words.stage import check_word_diversity
    from saetm.topic_table import model_rows, print_table, seal_holds

    if args.topics is None and args.word_diversity is None:
        raise SaetmError("nothing to change; give --topics T and/or --word-diversity P")
    if args.word_diversity is not None:  # settings are checked before data is read
        check_word_diversity(args.word_diversity)
    directory = Path(args.dir)
    if not (directory / MODEL_FILE).is_file():
        SAETM.load(directory)  # says what is missing, before the lock creates anything
    with directory_lock(directory):  # load under the lock: no other process rewrites it meanwhile
        # the texts play no part in topics: documents.parquet is read only when the seal does not
        # vouch for it (this command seals the directory again)
        model = load_model(SAETM, directory, documents=not seal_holds(directory))
        if args.word_diversity is not None:  # only the word lists change: custom labels stay
            model.set_params(words__diversity=args.word_diversity)
            if model.word_ranking != "coherent":
                log.warning("--word-diversity changes only the coherent ranking; this model lists words by %r",
                            model.word_ranking)
        if args.topics is not None:
            model.retopic(args.topics)
            model.custom_labels_ = None
        save_topics(model, directory)
    print_table(model_rows(model, args.words))  # get_topic_info's rows, without pandas
    return 0
