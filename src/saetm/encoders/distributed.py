"""Encoding documents with several processes (torchrun; see docs/DISTRIBUTED.md).

The texts are cut into the chunks of :func:`saetm.encoders.cache.chunk_rows`
documents that the single-process cache uses; chunk ``j`` is encoded by process
``j mod world_size`` (read from that process's cache when it is stored there), and
the chunks are all-gathered over gloo one round of ``world_size`` chunks at a time,
so every process ends with the whole ``(n, d)`` array, equal to a single-process
encoding of the same chunks. Every process keeps the chunk entries it encoded in
its own cache: a killed run, started again, reads them back instead of encoding
them again.
"""

from __future__ import annotations

import logging
from typing import Sequence

import numpy as np
import torch
import torch.distributed as dist

from saetm.encoders.cache import (EmbeddingCache, cache_for, chunk_bounds, chunk_rows, content_key, encode_chunks,
                                  stack_chunks)
from saetm.errors import SaetmError
from saetm.sae.distributed import ProcessInfo, process_info

log = logging.getLogger("saetm")


def _cpu_group(info: ProcessInfo):
    """None (the default group) under gloo; a gloo group under NCCL (numpy lives on the CPU)."""
    return None if dist.get_backend() == "gloo" else dist.new_group(backend="gloo")


def encode_sharded(encoder, texts: Sequence[str], *, cache: EmbeddingCache | None | bool = True,
                   show_progress: bool = True, info: ProcessInfo | None = None) -> np.ndarray:
    """Embed ``texts`` (the same list on every process) with every process of the group
    encoding its share of the chunks; returns the whole float32 array on every process.
    Outside a process group this is :func:`saetm.encoders.text.encode_cached`."""
    from saetm.encoders.text import encode_cached

    info = info or process_info()
    texts = list(texts)
    if not info.enabled:
        return encode_cached(encoder, texts, cache=cache, show_progress=show_progress)
    cache = cache_for(encoder, cache)
    group = _cpu_group(info)
    whole = None
    if cache is not None and texts:  # the whole-corpus entry, if every process has it
        whole = cache.get(content_key(encoder.name, texts), len(texts))
    flag = torch.tensor([int(whole is not None)], dtype=torch.int32)
    dist.all_reduce(flag, op=dist.ReduceOp.MIN, group=group)
    if flag.item():
        return whole
    size = chunk_rows()
    bounds = chunk_bounds(len(texts), size)
    mine = range(info.rank, len(bounds), info.world_size)
    parts = encode_chunks(encoder, texts, cache, mine, size=size, show_progress=show_progress and info.is_main)
    dim = torch.tensor([next(iter(parts.values())).shape[1] if parts else 0], dtype=torch.int64)
    dist.all_reduce(dim, op=dist.ReduceOp.MAX, group=group)
    d = int(dim.item())
    for first in range(0, len(bounds), info.world_size):  # round: chunks first .. first + world - 1
        j = first + info.rank
        send = torch.zeros((size, d), dtype=torch.float32)
        if j < len(bounds):
            emb = parts[j]
            if emb.shape[1] != d:
                raise SaetmError(f"process {info.rank} encoded {emb.shape[1]}-d embeddings, another {d}-d; "
                                 "give every process the same encoder")
            send[:len(emb)] = torch.from_numpy(np.ascontiguousarray(emb, dtype=np.float32))
        received = [torch.empty_like(send) for _ in range(info.world_size)]
        dist.all_gather(received, send, group=group)
        for r, t in enumerate(received):
            k = first + r
            if k < len(bounds) and k not in parts:
                parts[k] = t[:bounds[k][1] - bounds[k][0]].numpy()
    log.info("embeddings: %d documents in %d chunk(s), encoded by %d processes", len(texts), len(bounds),
             info.world_size)
    return stack_chunks(parts, len(bounds)) if bounds else np.zeros((0, d), np.float32)
