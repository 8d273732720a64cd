"""Process memory hygiene shared by the stages."""


def release_freed_memory() -> None:
    """Hand heap memory freed by a stage back to the operating system (Linux/glibc only).

    glibc keeps freed blocks of the sizes the SAE allocates (tens of MB) in its heap, and
    the later stages allocate elsewhere, so without this a fit's peak memory would carry
    a few hundred MB of leftovers from training and encoding. Harmless where
    ``malloc_trim`` is missing.
    """
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
