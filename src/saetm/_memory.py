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


def release_pages(X) -> None:
    """Drop the pages of a memory-mapped array (``np.load(..., mmap_mode="r")``, or a view of
    one) from this process's resident memory once they have been read: they stay in the
    page cache and are read again on the next access, so a pass over a file larger than
    memory holds one block at a time. Does nothing for other arrays."""
    import mmap

    obj = X
    for _ in range(8):  # memmap -> base chain of views
        mm = obj if isinstance(obj, mmap.mmap) else getattr(obj, "_mmap", None)
        if isinstance(mm, mmap.mmap):
            try:
                mm.madvise(mmap.MADV_DONTNEED)
            except (AttributeError, ValueError, OSError):
                pass  # no madvise on this platform, or the map is closed
            return
        obj = getattr(obj, "base", None)
        if obj is None:
            return
