"""Stage 1 training: one loop for every SAE architecture.

    for step in range(start, steps):
        x = preprocess(next batch)
        loss = sae.training_forward(x, step)       # MSE + sparsity / AuxK
        loss.backward(); remove_parallel_grads()   # atoms rotate, never grow
        adam.step(); normalize_decoder()           # unit-norm atoms
        every N steps: atomic checkpoint

Checkpoints hold everything the next step depends on (weights, Adam moments, the
data stream's position, dead-feature counters, the BatchTopK threshold EMA); every
random choice is derived from the seed, so an interrupted and resumed run on CPU ends
bit-identical to an uninterrupted one.

Inside a torch.distributed process group (torchrun; ``sae/distributed.py``) the same
loop trains data-parallel: ``batch_size`` is the global batch, split over the processes.
"""

from __future__ import annotations

import logging
import math
import re
import time
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import numpy as np
import torch

from saetm._version import FORMAT_VERSION
from saetm.errors import SaetmError
from saetm.io.persist import read_json, read_tensors, write_json, write_tensors
from saetm.sae.data import BatchStream
from saetm.sae.distributed import (Replica, broadcast_object, gather_objects, local_batch_size, process_info,
                                   training_device)
from saetm.sae.models import SAEConfig, SparseAutoencoder, build_sae

logger = logging.getLogger("saetm")


@dataclass
class TrainConfig:
    """How to train. ``None`` fields get defaults sized to the data (see ``resolve``)."""

    steps: int | None = None
    epochs: float | None = None
    batch_size: int | None = None
    lr: float = 1e-3
    warmup_steps: int | None = None
    decay_fraction: float = 0.2
    seed: int = 0
    dead_after: int | None = None
    checkpoint_dir: str | None = None
    checkpoint_every: int = 0
    keep_checkpoints: int = 2
    resume: bool = False
    log_every: int = 100
    device: str = "cpu"
    eval_samples: int = 8192
    buffer_rows: int | None = None  # rows shuffled together (None: 256 MB); memory ≈ 3 buffers + model

    def __post_init__(self):
        if self.steps is not None and self.epochs is not None:
            raise SaetmError("give either steps or epochs, not both")
        if self.steps is not None and self.steps < 1:
            raise SaetmError(f"steps must be >= 1, got {self.steps}")
        if self.epochs is not None and not self.epochs > 0:
            raise SaetmError(f"epochs must be > 0, got {self.epochs}")
        if self.batch_size is not None and self.batch_size < 1:
            raise SaetmError(f"batch_size must be >= 1, got {self.batch_size}")
        if not self.lr > 0 or not 0 <= self.decay_fraction <= 1:
            raise SaetmError("lr must be > 0 and decay_fraction in [0, 1]")
        if self.keep_checkpoints < 1 or self.checkpoint_every < 0:
            raise SaetmError("keep_checkpoints must be >= 1 and checkpoint_every >= 0")


def default_batch_size(n_rows: int) -> int:
    """About 16 batches per epoch, a power of two in [256, 4096], never above n_rows."""
    b = 2 ** int(math.log2(max(n_rows // 16, 1)))
    return int(min(max(b, 256), 4096, n_rows))


def default_steps(n_rows: int, batch_size: int) -> int:
    """~30 epochs, at least 1,000 and at most 10,000 steps: small corpora get many
    epochs (an SAE needs ~1k updates to settle), large ones a few passes."""
    return int(min(max(math.ceil(30 * n_rows / batch_size), 1000), 10_000))


def resolve(tc: TrainConfig, stream: BatchStream, world_size: int = 1) -> dict:
    """Concrete values for the ``None`` fields of ``tc`` given the data (all rows, and the
    global batch: ``world_size`` processes each taking ``stream.batch_size`` rows a step)."""
    rows, batch = stream.n_rows, stream.batch_size * world_size
    steps = tc.steps
    if steps is None:
        steps = math.ceil(tc.epochs * rows / batch) if tc.epochs is not None else default_steps(rows, batch)
    return {
        "steps": steps,
        "warmup_steps": tc.warmup_steps if tc.warmup_steps is not None else min(1000, max(1, steps // 20)),
        "dead_after": tc.dead_after or min(10_000_000, max(rows, 4 * batch)),
    }


def lr_at(step: int, steps: int, lr: float, warmup: int, decay_fraction: float) -> float:
    """Linear warm-up, constant, then linear decay over the last ``decay_fraction``."""
    if step < warmup:
        return lr * (step + 1) / warmup
    decay_start = max(warmup, int(steps * (1 - decay_fraction)))
    if decay_fraction > 0 and step >= decay_start:
        return lr * (steps - step) / (steps - decay_start)
    return lr


@torch.no_grad()
def evaluate_sae(sae: SparseAutoencoder, X: np.ndarray, batch_size: int = 1024) -> dict:
    """FVE, mean L0, dead fraction and MSE of the inference encoder on raw embeddings X (n, d)."""
    device = next(sae.parameters()).device
    was_training = sae.training
    sae.eval()
    x_all = sae.preprocess(torch.as_tensor(np.asarray(X, dtype=np.float32), device=device))
    mean = x_all.mean(dim=0)
    sse, total, l0 = 0.0, 0.0, 0.0
    fired = torch.zeros(sae.config.n_atoms, dtype=torch.bool, device=device)
    for i in range(0, len(x_all), batch_size):
        x = x_all[i:i + batch_size]
        a = sae.encode(x)
        sse += float((x - sae.decode(a)).double().pow(2).sum())
        total += float((x - mean).double().pow(2).sum())
        active = a > 0
        l0 += float(active.sum())
        fired |= active.any(dim=0)
    sae.train(was_training)
    n = len(x_all)
    return {"fve": 1.0 - sse / max(total, 1e-12), "l0": l0 / n,
            "dead_fraction": 1.0 - float(fired.float().mean()), "mse": sse / n}


# ----- checkpoints ----------------------------------------------------------------------
_CKPT = re.compile(r"^ckpt-(\d{9})\.json$")


def list_checkpoints(directory) -> list[tuple[int, Path]]:
    """Complete checkpoints in ``directory`` as (step, json path), oldest first. The JSON
    is written after the tensors, so a run killed mid-write leaves no listed checkpoint."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := _CKPT.match(p.name))]
    return sorted((s, p) for s, p in found if p.with_suffix(".safetensors").exists())


def save_checkpoint(directory, step: int, sae: SparseAutoencoder, opt: torch.optim.Optimizer,
                    stream: BatchStream, meta: dict, keep: int, streams: list[dict] | None = None) -> Path:
    """``streams``: every process's stream state, in rank order (distributed runs)."""
    tensors = {f"model.{k}": v for k, v in sae.state_dict().items()}
    tensors["train.samples_since_fired"] = sae.samples_since_fired
    for i, p in enumerate(sae.parameters()):
        for name, value in opt.state.get(p, {}).items():
            tensors[f"adam.{i}.{name}"] = value.reshape(-1) if value.ndim == 0 else value
    base = Path(directory) / f"ckpt-{step:09d}"
    write_tensors(base.with_suffix(".safetensors"), {k: v.detach().cpu().numpy() for k, v in tensors.items()})
    write_json(base.with_suffix(".json"), {**meta, "format_version": FORMAT_VERSION, "step": step,
                                           "stream": stream.state_dict(),
                                           **({"streams": streams} if streams else {})})
    for _, old in list_checkpoints(directory)[:-keep]:
        old.with_suffix(".safetensors").unlink(missing_ok=True)
        old.unlink(missing_ok=True)
    return base.with_suffix(".json")


def read_checkpoint(json_path: Path) -> tuple[dict, dict]:
    """(metadata, arrays) of one checkpoint, validated."""
    meta = read_json(json_path)
    if not isinstance(meta, dict) or meta.get("format_version") != FORMAT_VERSION or "stream" not in meta:
        raise SaetmError(f"checkpoint {json_path} is from another saetm version or corrupt; "
                         "use another checkpoint_dir or resume=False")
    return meta, read_tensors(json_path.with_suffix(".safetensors"))


def load_checkpoint(json_path: Path, sae: SparseAutoencoder, opt: torch.optim.Optimizer,
                    stream: BatchStream, content: tuple[dict, dict] | None = None, rank: int = 0) -> dict:
    """Restore a checkpoint into sae, opt and stream (``content``: already read by
    :func:`read_checkpoint`; ``rank``: whose stream position to take)."""
    meta, arrays = content if content is not None else read_checkpoint(json_path)
    t = {k: torch.from_numpy(v) for k, v in arrays.items()}
    device = next(sae.parameters()).device
    try:
        sae.load_state_dict({k[6:]: v for k, v in t.items() if k.startswith("model.")})
        sae.samples_since_fired.copy_(t["train.samples_since_fired"])
        state = {}
        for i, p in enumerate(sae.parameters()):
            s = {k.split(".")[2]: v for k, v in t.items() if k.startswith(f"adam.{i}.")}
            if s:
                s["step"] = s["step"].reshape(())
                state[i] = {k: (v if k == "step" else v.to(device)) for k, v in s.items()}
        opt.load_state_dict({"state": state, "param_groups": opt.state_dict()["param_groups"]})
    except (KeyError, RuntimeError, ValueError) as e:
        raise SaetmError(f"checkpoint {json_path} does not fit this model ({str(e).splitlines()[0]}); "
                         "use another checkpoint_dir or resume=False") from None
    streams = meta.get("streams") or [meta["stream"]]
    stream.load_state_dict(streams[rank] if rank < len(streams) else meta["stream"])
    return meta


def _check_same_config(given: SAEConfig, saved: dict, where: Path) -> SAEConfig:
    saved_cfg = SAEConfig.from_dict(saved)
    ours = given.to_dict()
    # Fields the trainer resolves may be None in ``given``; everything set must agree.
    diff = [f.name for f in fields(SAEConfig) if ours[f.name] is not None and ours[f.name] != saved[f.name]
            and f.name not in ("input_scale", "sparsity_warmup_steps")]
    if diff:
        raise SaetmError(f"the checkpoints in {where} were made with a different SAE configuration "
                         f"({', '.join(diff)}); use another checkpoint_dir or resume=False")
    return saved_cfg


# ----- the loop ---------------------------------------------------------------------------
def _log_step(step: int, steps: int, lr: float, x: torch.Tensor, info: dict, bar) -> None:
    var = float((x - x.mean(dim=0)).pow(2).sum(dim=-1).mean())
    line = {"loss": float(info["loss"]), "fve": 1 - float(info["mse"]) / max(var, 1e-12),
            "l0": float(info["l0"]), "dead": int(info["dead"])}
    logger.info("step %d/%d lr %.2e loss %.4f fve %.3f l0 %.1f dead %d", step + 1, steps, lr, *line.values())
    if bar is not None:
        bar.set_postfix({k: round(v, 3) for k, v in line.items()}, refresh=False)


def train_sae(data, sae_config: SAEConfig, train_config: TrainConfig | None = None,
              progress: bool = True) -> tuple[SparseAutoencoder, dict]:
    """Train an SAE on embeddings and return it (eval mode) with its metrics.

    data: (n, d) array, ``.npy`` path, folder/list of shards, or a ``BatchStream``
    (in a distributed run: this process's stream, ``batch_size`` rows of the global batch).
    In a distributed run an array is taken to be the same on every process, which then
    trains on its share of the batches one process would see (``SharedBatchStream``);
    files are read in disjoint blocks per process.
    metrics: fve, l0, dead_fraction, mse (inference encoder, on up to ``eval_samples``
    rows), steps, epochs, samples_seen, samples_per_second, batch_size (global).
    Inside a torch.distributed process group every process calls this with the same
    arguments and gets the same model; only rank 0 writes checkpoints and logs.
    """
    tc = train_config or TrainConfig()
    world = process_info()
    if isinstance(data, BatchStream):
        stream = data
        if tc.batch_size and tc.batch_size != stream.batch_size * world.world_size:
            raise SaetmError(f"batch_size {tc.batch_size} differs from the stream's "
                             f"{stream.batch_size * world.world_size}; set only one")
    else:
        from saetm.sae.data import SharedBatchStream, open_embeddings

        parts = open_embeddings(data)
        n_rows = sum(p.n_rows for p in parts)
        w = world.world_size
        batch = tc.batch_size or default_batch_size(n_rows)
        if not tc.batch_size and batch % w:
            batch = max(w, batch // w * w)  # default: divisible by w
        if world.enabled and isinstance(data, np.ndarray):
            # every process holds all rows: each takes its share of the one-process batches
            stream = SharedBatchStream(parts, local_batch_size(batch, world), seed=tc.seed, rank=world.rank,
                                       world_size=w, buffer_rows=tc.buffer_rows)
        else:
            # Distributed: blocks small enough that every process gets several (small data).
            block_rows = min(2048, max(1, n_rows // (4 * w))) if world.enabled else 2048
            stream = BatchStream(parts, local_batch_size(batch, world), seed=tc.seed, rank=world.rank,
                                 world_size=w, block_rows=block_rows, buffer_rows=tc.buffer_rows)
    if stream.dim != sae_config.d_in:
        raise SaetmError(f"embeddings have {stream.dim} columns but the SAE expects {sae_config.d_in}; "
                         f"set SAEConfig(d_in={stream.dim}) or use the matching encoder")
    device = training_device(tc.device, world)
    plan = resolve(tc, stream, world.world_size)
    steps = plan["steps"]
    ckpt_dir = Path(tc.checkpoint_dir) if tc.checkpoint_dir else None
    # Rank 0 finds and reads the checkpoint and sends it to the others.
    existing = broadcast_object(list_checkpoints(ckpt_dir) if ckpt_dir and world.is_main else [], world)
    if existing and not tc.resume:
        raise SaetmError(f"{ckpt_dir} already holds checkpoints of an earlier run; "
                         "pass resume=True to continue it, or choose an empty checkpoint_dir")
    content = broadcast_object(read_checkpoint(existing[-1][1]) if existing and world.is_main else None, world)

    sample = stream.sample(tc.eval_samples, seed=tc.seed)
    if existing:
        cfg = _check_same_config(sae_config, content[0].get("sae_config", {}), ckpt_dir)
    else:
        cfg = sae_config
        if cfg.input_norm == "scale" and cfg.input_scale is None:  # unit mean squared norm
            cfg = replace(cfg, input_scale=float(1.0 / np.sqrt(np.mean(np.sum(sample.astype(np.float64) ** 2, 1)))))
        if cfg.sparsity_warmup_steps is None:
            cfg = replace(cfg, sparsity_warmup_steps=max(1, steps // 20))
    sae = build_sae(cfg, seed=tc.seed).to(device)
    sae.dead_after = plan["dead_after"]
    opt = torch.optim.Adam(sae.parameters(), lr=tc.lr, betas=(0.9, 0.999))

    start, seen, seconds = 0, 0, 0.0
    if existing:
        meta = load_checkpoint(existing[-1][1], sae, opt, stream, content, world.rank)
        start, seen, seconds = meta["step"], meta["samples_seen"], meta["train_seconds"]
        if start > steps:
            raise SaetmError(f"the latest checkpoint in {ckpt_dir} is at step {start}, beyond the {steps} steps "
                             "asked for; ask for more steps or use another checkpoint_dir")
        if world.is_main:
            logger.info("resuming from %s (step %d of %d)", existing[-1][1], start, steps)
    else:
        sae.init_from_batch(sae.preprocess(torch.from_numpy(sample[:4096]).to(device)))
    meta = {"sae_config": cfg.to_dict(), "train_config": {k: (str(v) if isinstance(v, Path) else v)
                                                           for k, v in asdict(tc).items()}, "resolved": plan}

    replica = Replica(sae, world)  # after the initialisation: DDP checks every rank starts equal
    bar = None
    if progress and world.is_main:
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, initial=start, desc=f"SAE {cfg.arch}", unit="step", dynamic_ncols=True)
    sae.train()
    t0, start_seen = time.perf_counter(), seen
    try:
        for step in range(start, steps):
            x = sae.preprocess(torch.from_numpy(stream.next_batch()).to(device))
            lr = lr_at(step, steps, tc.lr, plan["warmup_steps"], tc.decay_fraction)
            for group in opt.param_groups:
                group["lr"] = lr
            loss, info = replica.loss(x, step)
            opt.zero_grad(set_to_none=True)
            loss.backward()  # distributed: gradients averaged over the processes here
            sae.remove_parallel_grads()
            opt.step()
            sae.normalize_decoder()
            replica.after_step(x.shape[0])
            seen += x.shape[0] * world.world_size

            if world.is_main and (step % tc.log_every == 0 or step == steps - 1):
                _log_step(step, steps, lr, x, info, bar)
            if bar is not None:
                bar.update(1)
            done = step + 1
            if ckpt_dir and ((tc.checkpoint_every and done % tc.checkpoint_every == 0) or done == steps):
                elapsed = seconds + time.perf_counter() - t0
                streams = gather_objects(stream.state_dict(), world)  # every rank's position
                if world.is_main:
                    save_checkpoint(ckpt_dir, done, sae, opt, stream, {**meta, "samples_seen": seen,
                                    "train_seconds": elapsed}, tc.keep_checkpoints, streams if world.enabled else None)
    finally:
        if bar is not None:
            bar.close()
    loop_seconds = time.perf_counter() - t0
    seconds += loop_seconds

    sae.eval()
    x_cal = sae.preprocess(torch.from_numpy(sample).to(device))
    sae.finalize(x_cal)
    metrics = evaluate_sae(sae, sample)
    metrics.update({
        "steps": steps, "samples_seen": seen, "epochs": seen / stream.n_rows,
        "batch_size": stream.batch_size * world.world_size, "world_size": world.world_size,
        "samples_per_second": (seen - start_seen) / max(loop_seconds, 1e-9) if seen > start_seen
        else seen / max(seconds, 1e-9),
        "train_seconds": seconds, "eval_samples": len(sample),
    })
    if hasattr(sae, "threshold"):
        metrics["threshold"] = float(sae.threshold)
    if world.is_main:
        logger.info("SAE trained: fve %.3f l0 %.1f dead %.1f%% (%d steps, %.0f samples/s)", metrics["fve"],
                    metrics["l0"], 100 * metrics["dead_fraction"], steps, metrics["samples_per_second"])
    return sae, metrics
