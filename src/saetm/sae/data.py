"""Seeded, resumable batch streams over embeddings that need not fit in memory.

Sources: an in-memory array, a memory-mapped ``.npy`` file, a folder or list of
``.npy`` / ``.parquet`` shards. The rows are cut into blocks (``block_rows`` rows of a
``.npy``; one row group of a Parquet file). Every epoch draws a seeded permutation of
all blocks; consecutive blocks are gathered into a buffer of about ``buffer_rows`` rows
(256 MB by default) whose rows are shuffled again. Memory stays constant whatever the
data size, and data up to one buffer (≈170k rows of 384-d) gets a full permutation.

The stream never ends: batches have a constant size and run across epoch boundaries.
Its position is ``(epoch, position)`` (rows of the epoch already served), and every
permutation is derived from ``(seed, epoch, buffer)``, so ``load_state_dict`` resumes
exactly. With ``world_size > 1``, rank r serves the blocks r, r + W, r + 2W, ... of each
epoch's permutation, so the processes of a distributed run read disjoint data.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from saetm.errors import SaetmError


class _ArrayPart:
    """An in-memory or memory-mapped (n, d) array."""

    def __init__(self, array: np.ndarray, name: str):
        if array.ndim != 2:
            raise SaetmError(f"{name}: embeddings must be a 2-d array (n, d), got shape {array.shape}")
        if not np.issubdtype(array.dtype, np.number):
            raise SaetmError(f"{name}: embeddings must be numeric, got dtype {array.dtype}")
        self.array, self.name = array, name
        self.n_rows, self.dim = array.shape

    def blocks(self, block_rows: int) -> list[tuple[int, int]]:
        return [(s, min(s + block_rows, self.n_rows)) for s in range(0, self.n_rows, block_rows)]

    def read(self, start: int, stop: int) -> np.ndarray:
        return np.asarray(self.array[start:stop], dtype=np.float32)

    def take(self, rows: np.ndarray) -> np.ndarray:
        return np.asarray(self.array[rows], dtype=np.float32)


class _ParquetPart:
    """A Parquet file: one list-of-floats column, or all-numeric columns. Blocks are row
    groups, read whole (write files with moderate row groups, e.g. 65,536 rows)."""

    def __init__(self, path: Path, column: str | None = None):
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.name = str(path)
        try:
            self.file = pq.ParquetFile(path)
        except Exception as e:
            raise SaetmError(f"{path} is not a readable Parquet file ({e})") from None
        schema = self.file.schema_arrow

        def is_list(t):
            return pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)

        if column is not None:
            if column not in schema.names:
                raise SaetmError(f"{path} has no column {column!r}; its columns are {schema.names}")
            self.columns = [column]
        else:
            lists = [f.name for f in schema if is_list(f.type)]
            self.columns = lists[:1] or [f.name for f in schema if pa.types.is_floating(f.type)]
            if not self.columns:
                raise SaetmError(f"{path} has no embedding column (a list of floats, or float columns)")
        self.is_list = len(self.columns) == 1 and is_list(schema.field(self.columns[0]).type)
        meta = self.file.metadata
        self.n_rows = meta.num_rows
        sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
        self.bounds = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.dim = self._to_numpy(self.file.read_row_group(0, columns=self.columns)).shape[1] if self.n_rows else 0

    def _to_numpy(self, table) -> np.ndarray:
        if not self.is_list:
            return np.column_stack([table.column(c).to_numpy().astype(np.float32) for c in self.columns])
        arr = table.column(self.columns[0]).combine_chunks()
        flat = arr.flatten().to_numpy(zero_copy_only=False).astype(np.float32)
        n = len(arr)
        if n and flat.size % n:
            raise SaetmError(f"{self.name}: embedding rows have different lengths")
        return flat.reshape(n, -1 if n else 0)

    def blocks(self, block_rows: int) -> list[tuple[int, int]]:
        return [(int(a), int(b)) for a, b in zip(self.bounds[:-1], self.bounds[1:]) if b > a]

    def read(self, start: int, stop: int) -> np.ndarray:
        first = int(np.searchsorted(self.bounds, start, "right")) - 1
        last = int(np.searchsorted(self.bounds, stop, "left"))
        table = self.file.read_row_groups(list(range(first, last)), columns=self.columns)
        base = int(self.bounds[first])
        return self._to_numpy(table)[start - base:stop - base]

    def take(self, rows: np.ndarray) -> np.ndarray:
        groups = np.searchsorted(self.bounds, rows, "right") - 1
        out = [self.read(int(self.bounds[g]), int(self.bounds[g + 1]))[rows[groups == g] - self.bounds[g]]
               for g in np.unique(groups)]
        return np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)


def _open_path(path: Path, column: str | None) -> list:
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in (".npy", ".parquet"))
        if not files:
            raise SaetmError(f"{path} holds no .npy or .parquet embedding shards")
        return [part for f in files for part in _open_path(f, column)]
    if not path.exists():
        raise SaetmError(f"embedding file {path} does not exist")
    if path.suffix == ".parquet":
        return [_ParquetPart(path, column)]
    if path.suffix != ".npy":
        raise SaetmError(f"{path}: embeddings must be .npy or .parquet files (or a folder of them)")
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise SaetmError(f"{path} is not a readable .npy array ({e}); re-create it with numpy.save") from None
    return [_ArrayPart(array, str(path))]


def open_embeddings(data, column: str | None = None) -> list:
    """Open ``data`` (array, path, folder or list of those) as a list of row sources."""
    if isinstance(data, (_ArrayPart, _ParquetPart)):
        return [data]
    if isinstance(data, (str, os.PathLike)):
        parts = _open_path(Path(data), column)
    elif isinstance(data, np.ndarray):
        part = _ArrayPart(data, "array")
        if not isinstance(data, np.memmap) and not np.isfinite(data).all():
            row = int(np.nonzero(~np.isfinite(data).all(axis=1))[0][0])
            raise SaetmError(f"embeddings contain NaN or infinite values (first at row {row}); "
                             "remove or re-encode them")
        parts = [part]
    elif isinstance(data, Sequence) and data and not isinstance(data, str):
        parts = [p for item in data for p in open_embeddings(item, column)]
    elif hasattr(data, "detach") and hasattr(data, "numpy"):  # a torch tensor
        parts = open_embeddings(data.detach().cpu().numpy(), column)
    else:
        raise SaetmError(f"cannot read embeddings from {type(data).__name__}; "
                         "pass an array, a .npy/.parquet path or a folder")
    dims = {p.dim for p in parts if p.n_rows}
    if len(dims) > 1:
        raise SaetmError(f"embedding shards have different dimensions {sorted(dims)}; use one encoder for all")
    if sum(p.n_rows for p in parts) == 0:
        raise SaetmError("no embeddings to train on (0 rows)")
    return [p for p in parts if p.n_rows]


class BatchStream:
    """An endless, seeded, resumable stream of (batch_size, d) float32 batches."""

    def __init__(self, data, batch_size: int, seed: int = 0, rank: int = 0, world_size: int = 1,
                 block_rows: int = 2048, buffer_rows: int | None = None, column: str | None = None):
        self.parts = open_embeddings(data, column)
        self.dim = self.parts[0].dim
        self.n_rows = sum(p.n_rows for p in self.parts)
        if batch_size < 1 or block_rows < 1:
            raise SaetmError(f"batch_size and block_rows must be positive, got {batch_size} and {block_rows}")
        if seed < 0:
            raise SaetmError(f"seed must be a non-negative integer, got {seed}")
        if not 0 <= rank < world_size:
            raise SaetmError(f"rank {rank} is out of range for world_size {world_size}")
        self.batch_size, self.seed, self.rank, self.world_size = int(batch_size), int(seed), rank, world_size
        self.block_rows = int(block_rows)
        self.buffer_rows = int(buffer_rows or max(block_rows, (256 << 20) // (4 * self.dim)))
        self.blocks = [(i, s, e) for i, p in enumerate(self.parts) for s, e in p.blocks(self.block_rows)]
        if len(self.blocks) < world_size:
            raise SaetmError(f"the data has only {len(self.blocks)} blocks for {world_size} processes; "
                             "use a smaller block_rows or fewer processes")
        self.epoch, self.position = 0, 0
        self._plan_key, self._plan = None, None
        self._buffer_key, self._buffer = None, None

    # ----- one epoch -------------------------------------------------------------------
    def _epoch_plan(self, epoch: int):
        """Buffers of this rank in ``epoch``: (block ids of each buffer, start rows; the last is the total)."""
        if self._plan_key != epoch:
            order = np.random.default_rng([self.seed, epoch]).permutation(len(self.blocks))[self.rank::self.world_size]
            groups, current, rows = [], [], 0
            for b in order:
                size = self.blocks[b][2] - self.blocks[b][1]
                if current and rows + size > self.buffer_rows:
                    groups.append(current)
                    current, rows = [], 0
                current.append(int(b))
                rows += size
            groups.append(current)
            sizes = [sum(self.blocks[b][2] - self.blocks[b][1] for b in g) for g in groups]
            starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
            self._plan_key, self._plan = epoch, (groups, starts)
        return self._plan

    @property
    def epoch_rows(self) -> int:
        """Rows this rank serves per epoch."""
        return int(self._epoch_plan(self.epoch)[1][-1])

    def _read_block(self, b: int) -> np.ndarray:
        i, s, e = self.blocks[b]
        rows = self.parts[i].read(s, e)
        if not np.isfinite(rows).all():
            raise SaetmError(f"{self.parts[i].name}: rows {s}-{e} contain NaN or infinite values; "
                             "remove or re-encode them")
        return rows

    def _buffer_for(self, epoch: int, g: int) -> np.ndarray:
        if self._buffer_key != (epoch, g):
            groups, _ = self._epoch_plan(epoch)
            rows = np.concatenate([self._read_block(b) for b in groups[g]])
            order = np.random.default_rng([self.seed, epoch, g]).permutation(len(rows))
            self._buffer_key, self._buffer = (epoch, g), rows[order]
        return self._buffer

    # ----- the stream ------------------------------------------------------------------
    def next_batch(self) -> np.ndarray:
        return self._take(self.batch_size)

    def _take(self, need: int) -> np.ndarray:
        out = []
        while need:
            groups, starts = self._epoch_plan(self.epoch)
            if self.position >= starts[-1]:
                self.epoch, self.position = self.epoch + 1, 0
                continue
            g = int(np.searchsorted(starts, self.position, "right")) - 1
            buffer = self._buffer_for(self.epoch, g)
            offset = self.position - int(starts[g])
            take = min(need, len(buffer) - offset)
            out.append(buffer[offset:offset + take])
            self.position += take
            need -= take
        return np.concatenate(out) if len(out) > 1 else out[0].copy()

    def __iter__(self) -> Iterator[np.ndarray]:
        while True:
            yield self.next_batch()

    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        """Up to n rows drawn uniformly from all the data, in random order (every rank
        gets the same rows)."""
        n = min(n, self.n_rows)
        rng = np.random.default_rng([self.seed, seed, 1])
        rows = np.sort(rng.choice(self.n_rows, n, replace=False))  # sorted: sequential reads
        offsets = np.cumsum([0] + [p.n_rows for p in self.parts])
        out = []
        for i, p in enumerate(self.parts):
            local = rows[(rows >= offsets[i]) & (rows < offsets[i + 1])] - offsets[i]
            if len(local):
                out.append(p.take(local))
        X = np.concatenate(out)
        if not np.isfinite(X).all():
            raise SaetmError("embeddings contain NaN or infinite values; remove or re-encode them")
        return X[rng.permutation(n)]

    def _identity(self) -> dict:
        return {"n_rows": self.n_rows, "dim": self.dim, "seed": self.seed, "rank": self.rank,
                "world_size": self.world_size, "batch_size": self.batch_size,
                "block_rows": self.block_rows, "buffer_rows": self.buffer_rows}

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "position": self.position, **self._identity()}

    def load_state_dict(self, state: dict) -> None:
        mine = self._identity()
        theirs = {k: state.get(k) for k in mine}
        if theirs != mine:
            diff = ", ".join(f"{k}: {theirs[k]} then, {mine[k]} now" for k in mine if theirs[k] != mine[k])
            raise SaetmError(f"the checkpoint was made on other data or settings ({diff}); "
                             "resume with the same data and settings, or start afresh with resume=False")
        self.epoch, self.position = int(state["epoch"]), int(state["position"])


class SharedBatchStream(BatchStream):
    """One process's share of the batches a single process would see: every process
    holds all the rows, serves the same seeded stream of ``batch_size · world_size``-row
    batches, and keeps rows ``rank · batch_size`` to ``(rank + 1) · batch_size`` of each.

    Data-parallel training on these shares takes the same global batches as one process,
    so it trains the same model up to floating-point summation order (``saetm fit``
    under torchrun, where every process holds the whole corpus's embeddings)."""

    def __init__(self, data, batch_size: int, seed: int = 0, rank: int = 0, world_size: int = 1,
                 block_rows: int = 2048, buffer_rows: int | None = None, column: str | None = None):
        if not 0 <= rank < world_size:
            raise SaetmError(f"rank {rank} is out of range for world_size {world_size}")
        super().__init__(data, batch_size * world_size, seed=seed, block_rows=block_rows, buffer_rows=buffer_rows,
                         column=column)
        self.share_rank, self.shares = rank, world_size
        self.batch_size = int(batch_size)  # this process's rows of each batch

    def next_batch(self) -> np.ndarray:
        b = self.batch_size
        return self._take(b * self.shares)[self.share_rank * b:(self.share_rank + 1) * b].copy()

    def _identity(self) -> dict:
        return {**super()._identity(), "share_rank": self.share_rank, "shares": self.shares}
