"""Training one SAE with several processes (one per GPU, or several per CPU machine).

Launch with torchrun, on one machine or many (see docs/cluster.md)::

    torchrun --nproc_per_node=N -m saetm train-sae EMB.npy --out sae/

:func:`init_distributed` joins the process group torchrun describes in the
environment (gloo on CPU, NCCL on GPU); :func:`saetm.sae.train.train_sae` then trains
data-parallel:

- every process builds the same seeded SAE and reads its own blocks of the data
  (``BatchStream(rank, world_size)``), ``batch_size / world_size`` rows per step;
- DistributedDataParallel averages the gradients, so every process computes the same
  projected gradient, Adam step and decoder renormalisation, and the copies never drift;
- the state outside the gradients is merged after each step by :class:`Replica`:
  a feature has fired if it fired on any process (dead-feature counters count the
  samples of all processes), and BatchTopK's threshold EMA follows the smallest
  activation kept anywhere in the global batch;
- process 0 writes checkpoints (with every process's stream position) and the model;
  on resume, process 0 reads the checkpoint and sends it to the others, so only
  process 0 needs to see the checkpoint folder.

- the parts of the loss that depend on the whole batch look at the global batch:
  the dead features AuxK revives are those that fired nowhere in it (:func:`global_fired`),
  BatchTopK keeps the k·B largest activations of the global batch of B rows
  (:func:`global_batch_topk`), and the AuxK loss is normalised by the residual
  variance of the global batch (:func:`global_residual_variance`).

With the same global batches (every process holding all rows, as ``saetm fit``
does: ``sae/data.py``'s ``SharedBatchStream``), N processes train the model one
process trains, up to floating-point summation order.
"""

from __future__ import annotations

import datetime
import inspect
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from saetm.errors import SaetmError

_ENV = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class ProcessInfo:
    """Where this process stands in the group (rank 0 of 1 when not distributed)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def is_initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def process_info() -> ProcessInfo:
    """This process's rank and the group size (``ProcessInfo()`` outside a process group)."""
    if not is_initialized():
        return ProcessInfo()
    return ProcessInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))


def init_distributed(backend: str | None = None, timeout_s: float = 1800) -> ProcessInfo:
    """Join the process group torchrun describes in the environment (``RANK``,
    ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``).

    Does nothing when ``WORLD_SIZE`` is unset or 1 (a plain ``python`` run), or when a
    group already exists. ``backend``: default NCCL when CUDA is available, else gloo.
    """
    if is_initialized():
        return process_info()
    world_size = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world_size <= 1:
        return ProcessInfo()
    missing = [k for k in _ENV if not os.environ.get(k)]
    if missing:
        raise SaetmError(f"WORLD_SIZE={world_size} but {', '.join(missing)} is not set; "
                         "launch with torchrun, which sets them")
    if not dist.is_available():
        raise SaetmError("this PyTorch build has no torch.distributed; install a standard PyTorch build")
    backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if backend == "nccl":
        if local_rank >= torch.cuda.device_count():
            raise SaetmError(f"LOCAL_RANK={local_rank} but this machine has {torch.cuda.device_count()} GPUs; "
                             "use --nproc_per_node at most the number of GPUs")
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout_s))
    return process_info()


def shutdown() -> None:
    """Leave the process group (if any)."""
    if is_initialized():
        dist.destroy_process_group()


def training_device(name: str, info: ProcessInfo) -> torch.device:
    """``"cuda"`` means this process's GPU (``cuda:LOCAL_RANK``) in a distributed run."""
    try:
        device = torch.device(name)
    except RuntimeError:
        raise SaetmError(f"unknown device {name!r}; use 'cpu', 'cuda' or 'cuda:N'") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise SaetmError(f"device {name!r} is not available on this machine; use device='cpu'")
        if device.index is None and info.enabled:
            device = torch.device("cuda", info.local_rank)
    return device


def local_batch_size(batch_size: int, info: ProcessInfo) -> int:
    """Rows per process of a global batch (it must split evenly)."""
    if batch_size % info.world_size:
        raise SaetmError(f"batch size {batch_size} does not split evenly over {info.world_size} processes; "
                         f"use a multiple of {info.world_size}")
    return batch_size // info.world_size


# ----- moving Python objects (rank 0 -> all, all -> all) -----------------------------------
def broadcast_object(obj, info: ProcessInfo):
    """Rank 0's ``obj`` on every process (identity outside a process group)."""
    if not info.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_objects(obj, info: ProcessInfo) -> list:
    """Every process's ``obj``, in rank order, on every process."""
    if not info.enabled:
        return [obj]
    out = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


# ----- the replicated training step ---------------------------------------------------------
class _TrainingLoss(nn.Module):
    """DDP averages gradients of what its ``forward`` returns: here the SAE's training loss."""

    def __init__(self, sae: nn.Module):
        super().__init__()
        self.sae = sae

    def forward(self, x: torch.Tensor, step: int):
        return self.sae.training_forward(x, step)


class Replica:
    """One process's copy of the SAE during training.

    ``loss(x, step)`` is ``sae.training_forward`` (under DDP when distributed);
    ``after_step(n_local)`` merges the state that is not a gradient. Outside a process
    group both are plain pass-throughs.
    """

    def __init__(self, sae: nn.Module, info: ProcessInfo):
        self.sae, self.info = sae, info
        self._ddp = None
        if info.enabled:
            device = next(sae.parameters()).device
            # No buffer sync in forward: DDP would overwrite every rank's firing counters
            # with rank 0's; they are merged in after_step instead.
            ddp = nn.parallel.DistributedDataParallel
            no_sync = ({"forward_sync_buffers": False} if "forward_sync_buffers" in inspect.signature(ddp).parameters
                       else {"broadcast_buffers": False})  # the older name (PyTorch < 2.13)
            self._ddp = ddp(_TrainingLoss(sae), device_ids=[device.index] if device.type == "cuda" else None,
                            **no_sync)
        self._counters = None

    def loss(self, x: torch.Tensor, step: int):
        if self._ddp is None:
            return self.sae.training_forward(x, step)
        self._counters = self.sae.samples_since_fired.clone()
        return self._ddp(x, step)

    @torch.no_grad()
    def after_step(self, n_local: int) -> None:
        if self._ddp is None:
            return
        sae = self.sae
        # training_forward set a feature's counter to 0 if it fired in this rank's batch
        # (counter + n_local > 0 otherwise): merge with "fired on any rank".
        fired = (sae.samples_since_fired == 0).to(torch.int32)
        dist.all_reduce(fired, op=dist.ReduceOp.MAX)
        n_global = n_local * self.info.world_size
        sae.samples_since_fired.copy_(torch.where(fired.bool(), 0, self._counters + n_global))
        threshold = getattr(sae, "threshold", None)
        if threshold is not None:
            # Every rank moved the same EMA towards its own smallest kept activation; the
            # minimum is the EMA of the smallest activation kept in the global batch.
            dist.all_reduce(threshold, op=dist.ReduceOp.MIN)


# ----- whole-batch quantities inside the training loss --------------------------------------
def training_group() -> bool:
    """True inside a process group of several processes (the loss then reduces over it)."""
    return is_initialized() and dist.get_world_size() > 1


@torch.no_grad()
def global_batch_topk(h: torch.Tensor, n_keep: int, local_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """BatchTopK over the global batch: ``(mask, smallest kept)`` of this process's rows.

    ``n_keep``: how many to keep of the global batch; ``local_mask``: this process's
    ``n_keep`` largest positive entries (the global winners among its rows are among
    them). The candidates' values are all-gathered, the ``n_keep``-th largest of all
    is the cut-off, and every process returns the same smallest kept value."""
    vals = h[local_mask]
    send = h.new_zeros(n_keep)
    send[:vals.numel()] = vals[:n_keep]
    got = [torch.empty_like(send) for _ in range(dist.get_world_size())]
    dist.all_gather(got, send)
    cutoff = torch.cat(got).topk(n_keep).values[-1]
    if cutoff > 0:
        return local_mask & (h >= cutoff), cutoff
    # fewer than n_keep positive entries in the global batch: all are kept
    smallest = vals.min() if vals.numel() else h.new_tensor(float("inf"))
    dist.all_reduce(smallest, op=dist.ReduceOp.MIN)
    return local_mask, smallest if torch.isfinite(smallest) else h.new_zeros(())


@torch.no_grad()
def global_fired(fired: torch.Tensor) -> torch.Tensor:
    """(F,) bool: fired on any process."""
    merged = fired.to(torch.int32)
    dist.all_reduce(merged, op=dist.ReduceOp.MAX)
    return merged.bool()


@torch.no_grad()
def global_residual_variance(residual: torch.Tensor) -> torch.Tensor:
    """Mean over the global batch of the squared distance of each residual row from the
    global batch mean (the AuxK normaliser of one process's batch of the same rows)."""
    total = torch.cat([residual.sum(dim=0), residual.new_tensor([residual.shape[0]])])
    dist.all_reduce(total)
    mean, n = total[:-1] / total[-1], total[-1]
    ss = (residual - mean).pow(2).sum().reshape(1)
    dist.all_reduce(ss)
    return (ss / n).reshape(())
