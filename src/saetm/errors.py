"""One exception type for every mistake a user can fix.

The CLI prints ``SaetmError`` messages as one line (no traceback) and exits 2.
Messages say what was wrong and what to do about it.
"""


class SaetmError(ValueError):
    """A problem with the user's input, files or settings, explained in one line."""


class SettingNameError(SaetmError, TypeError):
    """A keyword ``SAETM`` does not take (an old flat setting: the message names its new spelling)."""
