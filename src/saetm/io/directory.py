"""A model directory as one unit of writing: a lock, a staging folder, one commit step.

Saving writes every file into a hidden staging folder inside the directory and then
renames them into place, ``model.json`` last (and removed first), so a failure while
writing leaves the previous contents untouched and a killed run leaves a directory
that refuses to load rather than a mixed one. A lock (``flock`` on ``.saetm.lock``)
stops two processes from writing one directory at once.
"""

from __future__ import annotations

import errno
import os
from contextlib import contextmanager
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

from saetm.errors import SaetmError

MODEL_FILE = "model.json"
LOCK_FILE = ".saetm.lock"
_HELD: dict[str, int] = {}  # directories this process has locked (the lock is re-entrant)
STAGING = ".saetm-staging-"
MODEL_FILES = ["vocab.json", "state.safetensors", "sae/sae.safetensors", "sae/sae.json", "documents.parquet",
               "topics.safetensors", "topics.json", "doc_topics.npz", MODEL_FILE]
TOPIC_FILES = ["topics.safetensors", "topics.json", "doc_topics.npz", MODEL_FILE]


def _write_problem(directory: Path, e: OSError) -> SaetmError:
    """A one-line message for an OS error while writing ``directory``."""
    if e.errno == errno.ENOSPC or e.errno == getattr(errno, "EDQUOT", None):
        why = "the disk is full; free some space or choose another --out"
    elif e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        why = "permission denied; choose a writable --out"
    else:
        why = f"{e.strerror or e}; check the path, free disk space and permissions"
    return SaetmError(f"cannot write to {directory}: {why}")


@contextmanager
def directory_lock(directory: Path):
    """Hold an exclusive lock on ``directory`` (``flock`` on a lock file holding our pid).

    The kernel drops the lock when its process dies, so a killed run never blocks the
    next one. Re-entrant within one process. Creates the directory if needed, and
    removes it again on the way out if it is still empty (nothing was written)."""
    key = os.path.abspath(directory)
    if key in _HELD:
        _HELD[key] += 1
        try:
            yield
        finally:
            _HELD[key] -= 1
        return
    created = not directory.exists()
    lock = directory / LOCK_FILE
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd = _acquire(lock, directory)
    except OSError as e:
        _remove_if_empty(directory, created)
        raise _write_problem(directory, e) from None
    except SaetmError:
        _remove_if_empty(directory, created)
        raise
    _HELD[key] = 1
    try:
        yield
    finally:
        del _HELD[key]
        lock.unlink(missing_ok=True)  # before closing: a waiter then sees a new file, not ours
        os.close(fd)
        _remove_if_empty(directory, created)


def _acquire(lock: Path, directory: Path) -> int:
    """Open and lock ``lock``; returns its descriptor, or raises SaetmError naming the holder."""
    while True:
        fd = os.open(lock, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            elif os.fstat(fd).st_size:  # no flock (Windows): a non-empty lock file means a live writer
                raise BlockingIOError
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip()
            os.close(fd)
            raise SaetmError(f"another saetm process{f' (pid {holder})' if holder else ''} is writing {directory}; "
                             "wait for it to finish or use another --out") from None
        try:  # the previous holder may have removed the file between our open and flock
            current = os.path.samestat(os.fstat(fd), os.stat(lock))
        except FileNotFoundError:
            current = False
        if current:
            os.ftruncate(fd, 0)
            os.write(fd, str(os.getpid()).encode())
            return fd
        os.close(fd)


def _remove_if_empty(directory: Path, created: bool) -> None:
    if created:
        try:
            directory.rmdir()
        except OSError:
            pass  # not empty (a model was written) or already gone


def check_output_dir(directory: Path, overwrite: bool) -> None:
    """Refuse an output directory that cannot hold a model, or that holds one already."""
    if directory.exists() and not directory.is_dir():
        raise SaetmError(f"{directory} exists and is not a directory; choose another --out")
    parent = directory.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if parent.exists() and not parent.is_dir():
        raise SaetmError(f"cannot create {directory}: {parent} is a file, not a folder; choose another --out")
    if (directory / MODEL_FILE).exists() and not overwrite:
        raise SaetmError(f"{directory} already holds a saetm model; pass --overwrite (or overwrite=True) to replace it")


@contextmanager
def _signals_deferred():
    """Delay SIGINT/SIGTERM while files are renamed into place, so an interrupt lands
    before or after the switch to the new files, never half way through it."""
    import signal
    import threading

    block = hasattr(signal, "pthread_sigmask") and threading.current_thread() is threading.main_thread()
    if block:
        old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        yield
    finally:
        if block:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)


@contextmanager
def _staging(directory: Path):
    """A fresh hidden folder inside ``directory`` to write into; always removed afterwards.

    Writing everything there first means a failure (disk full, interrupt) never touches
    the model already in ``directory``. Leftovers of killed writers are removed too."""
    import shutil

    for old in directory.glob(STAGING + "*"):
        shutil.rmtree(old, ignore_errors=True)  # we hold the lock: no one else is writing
    for name in MODEL_FILES:  # temp files of killed writers (only ours: others may be writing a report)
        for old in (directory / name).parent.glob(f".{Path(name).name}.*.tmp"):
            old.unlink(missing_ok=True)
    stage = directory / f"{STAGING}{os.getpid()}"
    stage.mkdir()
    try:
        yield stage
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _commit(stage: Path, directory: Path, names: list[str], *, incomplete_first: bool) -> None:
    """Rename the staged files ``names`` into ``directory``; ``model.json`` (when staged) goes last.

    ``incomplete_first``: remove ``model.json`` before anything else, so that a run killed
    during the renames leaves a directory that refuses to load rather than a mixed one."""
    with _signals_deferred():
        if incomplete_first:
            (directory / MODEL_FILE).unlink(missing_ok=True)
        for name in [n for n in names if n != MODEL_FILE] + [n for n in names if n == MODEL_FILE]:
            source, target = stage / name, directory / name
            if source.exists():
                target.parent.mkdir(exist_ok=True)
                os.replace(source, target)
            else:
                target.unlink(missing_ok=True)  # e.g. no documents.parquet this time
