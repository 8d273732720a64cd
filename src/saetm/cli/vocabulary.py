"""``saetm fit``'s vocabulary options as settings: the stop-word files read (the flags come from the settings table)."""

from __future__ import annotations

from pathlib import Path

from saetm.errors import SaetmError


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
