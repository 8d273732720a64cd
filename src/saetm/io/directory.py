"""A model directory as one unit of writing: a lock, a staging folder, one commit step.

Saving writes every file into a hidden staging folder inside the directory and then
renames them into place, ``model.json`` last (and removed first), so a failure while
writing leaves the previous contents untouched and a killed run leaves a directory
that refuses to load rather than a mixed one. A lock (``flock`` on ``.saetm.lock``)
stops two processes from writing one directory at once.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
from contextlib import contextmanager
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

from saetm.errors import SaetmError
from saetm.io.provenance import content_sha256

log = logging.getLogger("saetm")

MODEL_FILE = "model.json"
LOCK_FILE = ".saetm.lock"
_HELD: dict[str, int] = {}  # directories this process has locked (the lock is re-entrant)
STAGING = ".saetm-staging-"
MODEL_FILES = ["vocab.json", "state.safetensors", "sae/sae.safetensors", "sae/sae.json", "documents.parquet",
               "topics.safetensors", "topics.json", "doc_topics.npz", MODEL_FILE]
TOPIC_FILES = ["topics.safetensors", "topics.json", "doc_topics.npz", MODEL_FILE]
# written later by `saetm evaluate` and `saetm report`: they describe the topics, so a
# new fit or retopic removes them
DERIVED_FILES = ["evaluation.json", "report.html"]


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
    # no following links, and only a regular file with no other name: the lock is
    # truncated and written, which must never reach a file elsewhere
    flags = os.O_CREAT | os.O_RDWR | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    while True:
        try:
            fd = os.open(lock, flags, 0o644)
        except OSError as e:
            if e.errno in (errno.ELOOP, errno.EISDIR, errno.ENXIO):
                raise _not_a_lock(lock) from None
            raise
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_nlink > 1:  # (some file systems report 0)
            os.close(fd)
            raise _not_a_lock(lock)
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


def _not_a_lock(lock: Path) -> SaetmError:
    return SaetmError(f"{lock} is not a lock file of saetm (it is a symbolic link, a hard link or not a regular "
                      "file); remove it and run saetm again")


def _remove_if_empty(directory: Path, created: bool) -> None:
    if created:
        try:
            directory.rmdir()
        except OSError:
            pass  # not empty (a model was written) or already gone


def check_output_dir(directory: Path, overwrite: bool, inputs=()) -> None:
    """Refuse an output directory that cannot hold a model, that holds files saetm would
    replace (unless ``overwrite``), or where saving would replace one of ``inputs``, the
    files the model is fitted from (even with ``overwrite``)."""
    if directory.exists() and not directory.is_dir():
        raise SaetmError(f"{directory} exists and is not a directory; choose another --out")
    parent = directory.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if parent.exists() and not parent.is_dir():
        raise SaetmError(f"cannot create {directory}: {parent} is a file, not a folder; choose another --out")
    if not directory.is_dir():
        return
    refuse_links(directory)
    present = [name for name in MODEL_FILES + DERIVED_FILES if os.path.lexists(directory / name)]
    for name in present:
        for source in inputs:
            if _same_file(directory / name, source):
                raise SaetmError(f"--out {directory} would replace the input file {source} (as {name}); "
                                 "choose another --out")
    if (directory / MODEL_FILE).exists() and not overwrite:
        raise SaetmError(f"{directory} already holds a saetm model; pass --overwrite (or overwrite=True) to replace it")
    if present and not overwrite:
        raise SaetmError(f"{directory} already holds {', '.join(present)}, which saetm would replace; pass --overwrite "
                         "(or overwrite=True) to replace them, or choose another --out")


def _same_file(a: Path, b) -> bool:
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):  # one of them does not exist (the reader reports a missing input)
        return False


def refuse_links(directory: Path, names=None) -> None:
    """Refuse a symbolic link (or a special file) where saetm reads or writes inside
    ``directory``: writing or reading through it would reach files elsewhere.

    ``names``: the paths to check, relative to ``directory``; by default every path a
    save writes (the model files, ``sae/``, the files it removes, staging folders)."""
    if names is None:
        names = ["sae", *MODEL_FILES, *DERIVED_FILES, *(p.name for p in directory.glob(STAGING + "*"))]
    for name in names:
        path = directory / name
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            continue
        except NotADirectoryError:  # e.g. sae/sae.json where sae is a file: the save reports it
            continue
        if stat.S_ISLNK(mode):
            raise SaetmError(f"{path} is a symbolic link; saetm neither reads nor writes through links inside a "
                             "model directory: replace it with the file itself, or use another directory")
        folder = name == "sae" or name.startswith(STAGING)
        if not (stat.S_ISDIR(mode) if folder else stat.S_ISREG(mode)):
            raise SaetmError(f"{path} is not a regular {'folder' if folder else 'file'}; remove it, or use "
                             "another directory")


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

    refuse_links(directory)  # under the lock, before anything is removed or written there
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
    during the renames leaves a directory that refuses to load rather than a mixed one.
    ``evaluation.json`` and ``report.html`` of the previous topics are removed before any
    new file arrives, so they never describe other topics."""
    with _signals_deferred():
        if incomplete_first:
            (directory / MODEL_FILE).unlink(missing_ok=True)
        stale = [name for name in DERIVED_FILES if os.path.lexists(directory / name)]
        for name in stale:
            (directory / name).unlink()
        if stale:
            log.info("removed %s from %s: %s the previous topics", " and ".join(stale), directory,
                     "they described" if len(stale) > 1 else "it described")
        for name in [n for n in names if n != MODEL_FILE] + [n for n in names if n == MODEL_FILE]:
            source, target = stage / name, directory / name
            if source.exists():
                target.parent.mkdir(exist_ok=True)
                os.replace(source, target)
            else:
                target.unlink(missing_ok=True)  # e.g. no documents.parquet this time


# ---------------------------------------------------------------- one fit per directory
FIT_ID = "saetm_fit_id"  # key of the fit id in a file's own metadata


def new_fit_id() -> str:
    """A random id for the files of one save (an identifier, not a choice of the method)."""
    import uuid

    return uuid.uuid4().hex


def check_one_fit(directory: Path, info: dict) -> None:
    """Refuse a directory whose files carry different fit ids (files swapped in from
    another fit). Reads only headers and small files.

    ``model.json`` holds the fit id and a fingerprint of ``vocab.json``; the safetensors
    files, ``sae/sae.json`` and ``documents.parquet`` hold the id in their own metadata.
    A file without an id (saved before fit ids, or rewritten by another tool) is not
    compared."""
    from saetm.io.persist import read_json, read_tensor_metadata

    ids = {MODEL_FILE: info.get("fit_id")}
    for name in ("state.safetensors", "topics.safetensors", "sae/sae.safetensors"):
        ids[name] = read_tensor_metadata(directory / name).get(FIT_ID)
    sae = read_json(directory / "sae" / "sae.json")
    ids["sae/sae.json"] = sae.get("fit_id") if isinstance(sae, dict) else None
    if (directory / "documents.parquet").exists():
        ids["documents.parquet"] = _parquet_fit_id(directory / "documents.parquet")
    vocab = info.get("vocab_sha256")
    if vocab is not None and vocab != content_sha256(directory / "vocab.json"):
        ids["vocab.json"] = "another"
    found = {name: str(i) for name, i in ids.items() if i is not None}  # str: an edited id may be any JSON
    if len(set(found.values())) > 1:
        values = list(found.values())
        main = found.get(MODEL_FILE) or max(values, key=values.count)
        stray = [name for name, i in found.items() if i != main]
        raise SaetmError(f"{directory} is inconsistent: {', '.join(stray)} {'are' if len(stray) > 1 else 'is'} "
                         "from another fit (or edited); do not mix files of different fits, re-run `saetm fit`")


def _parquet_fit_id(path: Path):
    import pyarrow.parquet as pq

    try:
        meta = pq.read_schema(path).metadata or {}
    except Exception as e:  # pyarrow raises its own types for corrupt files
        raise SaetmError(f"{path} is unreadable ({type(e).__name__}); the model directory is corrupt, "
                         "re-run `saetm fit`") from None
    value = meta.get(FIT_ID.encode())
    return None if value is None else value.decode(errors="replace")
