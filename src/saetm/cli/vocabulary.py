"""``saetm fit`` options for the vocabulary: stop words, lemmatisation, inflections."""

from __future__ import annotations

import argparse
from pathlib import Path

from saetm.errors import SaetmError


def add_vocabulary_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stop-words", metavar="FILE", action="append",
                        help="more stop words: a text file with one word per line ('#' starts a comment), added "
                             "to the English list; repeat for several files")
    parser.add_argument("--no-english-stop-words", action="store_true",
                        help="do not remove saetm's English stop words (with --stop-words: use only those)")
    parser.add_argument("--lemmatize", action="store_true",
                        help="replace every word by its lemma before counting (simplemma, English): topics list "
                             "lemmas such as 'use' for using/used")
    parser.add_argument("--merge-inflections", action="store_true",
                        help="count the vocabulary's inflections of one word (gun/guns, coin/coins/coined) as one, "
                             "shown as its most frequent form")


def vocabulary_settings(args) -> dict:
    """The SAETM keyword arguments these options ask for; the stop-word files are read here."""
    extra = [w for path in args.stop_words or [] for w in read_word_list(Path(path))]
    return {"stop_words": None if args.no_english_stop_words else "english",
            "extra_stop_words": extra or None, "lemmatize": args.lemmatize,
            "merge_inflections": args.merge_inflections}


def read_word_list(path: Path) -> list[str]:
    """Words of a text file, one per line (whitespace splits a line; '#' starts a comment)."""
    if not path.is_file():
        raise SaetmError(f"--stop-words {path} does not exist or is not a file; give a text file, one word per line")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise SaetmError(f"--stop-words {path} is not UTF-8 text; save it as UTF-8, one word per line") from None
    words = [w.lower() for line in text.splitlines() for w in line.split("#", 1)[0].split()]
    if not words:
        raise SaetmError(f"--stop-words {path} holds no words; give one word per line")
    return words
