"""``saetm train-sae``: train an SAE on embedding files, also under torchrun."""

from __future__ import annotations

import logging
from pathlib import Path

from saetm.cli._common import log
from saetm.errors import SaetmError


def cmd_train_sae(args) -> int:
    """Train an SAE on embedding files; under torchrun every process runs this (docs/cluster.md)."""
    from saetm.sae.data import open_embeddings
    from saetm.sae.distributed import init_distributed, shutdown
    from saetm.sae.models import SAEConfig
    from saetm.sae.persist import save_sae
    from saetm.sae.train import TrainConfig, list_checkpoints, train_sae

    out = Path(args.out)
    ckpt = Path(args.checkpoint_dir) if args.checkpoint_dir else out / "checkpoints"
    if (out / "sae.json").exists() and not args.resume:
        raise SaetmError(f"{out} already holds a trained SAE; choose another --out, or delete {out / 'sae.json'}")
    if list_checkpoints(ckpt) and not args.resume:
        raise SaetmError(f"{ckpt} holds checkpoints of an earlier run; pass --resume to continue it, "
                         "or choose another --out")
    import torch

    device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    world = init_distributed(backend="nccl" if device == "cuda" else "gloo")
    try:
        if not world.is_main:  # one voice: rank 0 logs, shows progress and writes the model
            log.setLevel(logging.WARNING)
        parts = open_embeddings([str(e) for e in args.embeddings], column=args.column)
        dim, n_rows = parts[0].dim, sum(p.n_rows for p in parts)
        config = SAEConfig(d_in=dim, n_atoms=args.n_atoms or (args.expansion or 16) * dim, k=args.k, arch=args.arch,
                           input_norm=args.input_norm, encoder_name=args.encoder_name)
        train = TrainConfig(steps=args.steps, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                            seed=args.seed, checkpoint_dir=str(ckpt), checkpoint_every=args.checkpoint_every,
                            resume=args.resume, device=device,
                            buffer_rows=max(1, int(args.buffer_mb * 2**20) // (4 * dim)))
        sae, metrics = train_sae(parts, config, train, progress=not args.quiet)
        if world.is_main:
            data = {"sources": [str(e) for e in args.embeddings], "files": [p.name for p in parts],
                    "n_rows": n_rows, "dim": dim}
            save_sae(sae, out, extra_meta={"metrics": metrics, "training_data": data,
                                           "training": {"lr": args.lr, "seed": args.seed, "device": device}})
            print(f"trained a {args.arch} SAE with {sae.config.n_atoms} atoms on {n_rows} embeddings "
                  f"({metrics['steps']} steps on {world.world_size} process(es), "
                  f"{metrics['samples_per_second']:.0f} samples/s): FVE {metrics['fve']:.3f}, "
                  f"L0 {metrics['l0']:.1f}, dead {100 * metrics['dead_fraction']:.1f}%; saved to {out}/")
    finally:
        shutdown()
    return 0
