"""Stage 1 benchmark: the four SAE architectures, out-of-core training, CPU throughput.

    python bench/bench_sae.py [--parts arch,ooc,throughput] [--threads 2]

(a) ``arch``: TopK, BatchTopK, ReLU+L1 and JumpReLU trained with the same settings on
    the same real embeddings (MiniLM embeddings of Reuters R8, plus 20 Newsgroups when
    it is in the embedding cache; nothing is encoded here), evaluated on a held-out 10%:
    FVE, L0, dead fraction (features that never fire on the held-out rows), samples/s.
    L0 is matched at 32: TopK/BatchTopK by k (BatchTopK's threshold is also recalibrated
    on the held-out rows); JumpReLU by its target L0, corrected up to twice while it misses
    by more than 10%; ReLU's l1_coef is bisected (log scale) on quarter-length runs, then a full
    run, then one secant correction; FVE at L0 = 32 is interpolated (log L0) when needed.
(b) ``ooc``: a .npy several times larger than a RAM budget (real embeddings tiled with
    seeded noise, written under /work/cache and deleted afterwards), trained for one
    epoch by ``saetm train-sae`` in a child process whose private memory is capped with
    RLIMIT_DATA (``ulimit -d``). The file is memory-mapped read-only: its pages are page
    cache (shared, clean, evictable; shown as RssFile), which RLIMIT_DATA does not count,
    while everything the process allocates does (RssAnon / VmData). RLIMIT_AS
    (``ulimit -v``) cannot be used: it counts the 3 GB mapping itself.
(c) ``throughput``: training samples/s of every architecture at the default size
    (expansion 16, k 32, batch 1024), and the fraction of the machine's float32 matmul
    peak (a 4096² torch.matmul, measured in the same run) that it reaches, counting the
    dense work of a step: 10·F·d FLOPs per sample (encoder 2Fd; decoder 2Fd; backward:
    decoder 4Fd, encoder weights 2Fd).
Prints the machine, torch version, thread count and load, then one table per part.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ARCHS = ("topk", "batchtopk", "relu", "jumprelu")
TARGET_L0 = 32


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown CPU"


def load() -> str:
    return f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"


def real_embeddings() -> tuple[np.ndarray, str]:
    """Cached MiniLM embeddings: R8 (encoded if missing), 20 Newsgroups only if cached."""
    from saetm.encoders.cache import EmbeddingCache, content_key
    from saetm.encoders.text import TextEncoder, encode_cached
    from saetm.io.datasets import load_20newsgroups, load_reuters_r8

    encoder = TextEncoder()
    r8 = load_reuters_r8()
    parts, names = [np.asarray(encode_cached(encoder, r8.texts, show_progress=False), np.float32)], ["R8"]
    ng = load_20newsgroups()
    hit = EmbeddingCache().get(content_key(encoder.name, ng.texts), len(ng.texts))
    if hit is not None:
        parts.append(np.asarray(hit, np.float32))
        names.append("20 Newsgroups")
    X = np.concatenate(parts)
    return X, " + ".join(f"{n} ({len(p)})" for n, p in zip(names, parts))


# ----- (a) architectures ------------------------------------------------------------------
def _train(X, arch, args, steps, **cfg):
    from saetm.sae.models import SAEConfig
    from saetm.sae.train import TrainConfig, train_sae

    config = SAEConfig(d_in=X.shape[1], n_atoms=args.arch_atoms, k=TARGET_L0, arch=arch, **cfg)
    return train_sae(X, config, TrainConfig(steps=steps, batch_size=args.arch_batch, seed=0, eval_samples=4096),
                     progress=False)


def _held_out(sae, X_test) -> dict:
    from saetm.sae.train import evaluate_sae

    return evaluate_sae(sae, X_test)


def relu_coef(X, args) -> float:
    """l1_coef values bisected (log scale) so quarter-length runs reach L0 ≈ 32."""
    lo, hi = math.log(1e-3), math.log(10.0)
    short = max(50, args.arch_steps // 4)
    for _ in range(args.relu_bisect):
        mid = 0.5 * (lo + hi)
        _, m = _train(X, "relu", args, short, l1_coef=math.exp(mid))
        print(f"  ReLU l1_coef {math.exp(mid):.4g}: L0 {m['l0']:.1f} after {short} steps", flush=True)
        lo, hi = (mid, hi) if m["l0"] > TARGET_L0 else (lo, mid)
    return math.exp(0.5 * (lo + hi))


def part_arch(args) -> None:
    X, source = real_embeddings()
    rng = np.random.default_rng(0)
    X = X[rng.permutation(len(X))]
    n_test = len(X) // 10
    X_test, X_train = X[:n_test], X[n_test:]
    print(f"\n(a) architectures: {source} real MiniLM embeddings; train {len(X_train)}, held-out {len(X_test)}; "
          f"{args.arch_atoms} atoms, batch {args.arch_batch}, {args.arch_steps} steps, lr 1e-3, seed 0; {load()}",
          flush=True)
    rows = []
    for arch in args.archs.split(","):
        runs = []
        if arch == "relu":
            coef = relu_coef(X_train, args)
            for _ in range(2):
                sae, m = _train(X_train, arch, args, args.arch_steps, l1_coef=coef)
                h = _held_out(sae, X_test)
                runs.append((f"relu (l1_coef {coef:.3g})", h, m))
                if abs(h["l0"] / TARGET_L0 - 1) <= 0.1:
                    break
                coef *= h["l0"] / TARGET_L0  # secant guess: L0 roughly inversely proportional to l1_coef
        elif arch == "jumprelu":  # its L0 settles below target_l0: up to two secant corrections
            target = float(TARGET_L0)
            for _ in range(3):
                sae, m = _train(X_train, arch, args, args.arch_steps, target_l0=target)
                h = _held_out(sae, X_test)
                runs.append((f"jumprelu (target_l0 {target:.0f})", h, m))
                if abs(h["l0"] / TARGET_L0 - 1) <= 0.1:
                    break
                target *= TARGET_L0 / h["l0"]
        else:
            sae, m = _train(X_train, arch, args, args.arch_steps)
            runs.append((arch, _held_out(sae, X_test), m))
            if arch == "batchtopk":  # its global threshold is calibrated to L0 = k on training rows;
                sae.finalize(sae.preprocess(torch.from_numpy(X_test)))  # here: on the held-out rows
                runs.append(("batchtopk (θ* on held-out)", _held_out(sae, X_test), m))
        for name, h, m in runs:
            rows.append((arch, name, h, m))
            print(f"  {name}: held-out FVE {h['fve']:.4f} L0 {h['l0']:.1f} dead {h['dead_fraction']:.3f} "
                  f"{m['samples_per_second']:.0f} samples/s", flush=True)

    def at_target(arch):
        pts = sorted((r[2]["l0"], r[2]["fve"]) for r in rows if r[0] == arch)
        l0, fve = min(pts, key=lambda p: abs(p[0] - TARGET_L0))
        if abs(l0 / TARGET_L0 - 1) <= 0.05:
            return fve, "measured"
        if len(pts) >= 2:  # linear in log L0 between the two points nearest the target
            (l0a, fa), (l0b, fb) = sorted(sorted(pts, key=lambda p: abs(math.log(p[0] / TARGET_L0)))[:2])
            t = (math.log(TARGET_L0) - math.log(l0a)) / (math.log(l0b) - math.log(l0a))
            return fa + t * (fb - fa), "interpolated" if 0 <= t <= 1 else "extrapolated"
        return None, "L0 off target"

    print(f"\n{'architecture':<26} {'FVE':>7} {'L0':>6} {'dead':>6} {'samples/s':>10}  FVE at L0={TARGET_L0}")
    for arch, name, h, m in rows:
        fve, how = at_target(arch)
        note = f"{fve:.4f} ({how})" if fve is not None else how
        print(f"{name:<26} {h['fve']:7.4f} {h['l0']:6.1f} {h['dead_fraction']:6.3f} "
              f"{m['samples_per_second']:10.0f}  {note}")


# ----- (b) out of core --------------------------------------------------------------------
def write_big_file(path: Path, X: np.ndarray, gib: float, seed: int = 0) -> int:
    rows = int(gib * 2**30) // (4 * X.shape[1])
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(rows, X.shape[1]))
    rng = np.random.default_rng(seed)
    chunk = 65536
    for start in range(0, rows, chunk):
        n = min(chunk, rows - start)
        idx = rng.integers(0, len(X), n)
        out[start:start + n] = X[idx] + 0.02 * rng.standard_normal((n, X.shape[1]), dtype=np.float32)
    out.flush()
    del out
    return rows


def _status(pid: int) -> dict | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            fields = dict(line.split(":", 1) for line in f)
    except OSError:
        return None
    return {k: int(fields[k].split()[0]) / 1024 for k in ("RssAnon", "RssFile", "VmData") if k in fields}


def part_ooc(args) -> None:
    X, source = real_embeddings()
    folder = Path(tempfile.mkdtemp(prefix="bench_sae_", dir=args.cache_dir))
    path, out = folder / "big.npy", folder / "sae"
    budget = int(args.ooc_budget_gib * 2**30)
    try:
        t0 = time.perf_counter()
        rows = write_big_file(path, X, args.ooc_file_gib)
        size = path.stat().st_size
        print(f"\n(b) out of core: {path} holds {rows} x {X.shape[1]} float32 = {size / 2**30:.2f} GiB "
              f"({source} tiled + seeded noise; written in {time.perf_counter() - t0:.0f} s); "
              f"private-memory budget RLIMIT_DATA = {args.ooc_budget_gib:.2f} GiB "
              f"({size / budget:.1f}x smaller than the file); {load()}", flush=True)
        cmd = [sys.executable, "-m", "saetm", "train-sae", str(path), "--out", str(out), "--arch", "topk",
               "--n-atoms", str(args.ooc_atoms), "--k", "16", "--batch-size", "4096", "--epochs", "1",
               "--buffer-mb", str(args.ooc_buffer_mb), "--checkpoint-every", "100", "-q"]
        print("  $ (ulimit -d %d; python %s)" % (budget // 1024, " ".join(cmd[1:])), flush=True)

        def limit():
            resource.setrlimit(resource.RLIMIT_DATA, (budget, budget))

        env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, preexec_fn=limit, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        samples = []
        while proc.poll() is None:
            s = _status(proc.pid)
            if s:
                samples.append((time.perf_counter() - start, s))
            time.sleep(0.5)
        stdout, stderr = proc.communicate()
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            print(f"  FAILED (exit {proc.returncode}): {stderr.strip()[-800:]}")
            return
        from saetm.sae.persist import load_sae

        m = load_sae(out).meta["metrics"]
        print(f"  {stdout.strip()}")
        print(f"\n  memory of the training process over time (MiB; sampled every 0.5 s, {len(samples)} samples)")
        print(f"  {'time':>7} {'RssAnon':>9} {'VmData':>9} {'RssFile':>9}")
        picks = sorted({min(len(samples) - 1, int(q * (len(samples) - 1))) for q in np.linspace(0, 1, 11)})
        for i in picks:
            t, s = samples[i]
            print(f"  {t:6.0f}s {s['RssAnon']:9.0f} {s['VmData']:9.0f} {s['RssFile']:9.0f}")
        later = [s for t, s in samples if t > 0.2 * wall] or [s for _, s in samples]
        peak = {k: max(s[k] for _, s in samples) for k in ("RssAnon", "VmData", "RssFile")}
        print(f"  peak RssAnon {peak['RssAnon']:.0f} MiB, peak VmData {peak['VmData']:.0f} MiB "
              f"(budget {budget / 2**20:.0f} MiB); RssAnon after the first 20% of the run: "
              f"{min(s['RssAnon'] for s in later):.0f}-{max(s['RssAnon'] for s in later):.0f} MiB; "
              f"peak RssFile {peak['RssFile']:.0f} MiB (mapped page cache, not private)")
        print(f"  {m['samples_seen']} samples ({m['epochs']:.2f} epochs) in {m['train_seconds']:.0f} s: "
              f"{m['samples_per_second']:.0f} samples/s (process wall {wall:.0f} s); FVE {m['fve']:.3f}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# ----- (c) throughput ---------------------------------------------------------------------
def matmul_peak(n: int = 4096, repeats: int = 5) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = math.inf
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best


def part_throughput(args) -> None:
    from saetm.sae.models import SAEConfig
    from saetm.sae.train import TrainConfig, train_sae

    X, source = real_embeddings()
    d = X.shape[1]
    F = 16 * d
    print(f"\n(c) throughput: {F} atoms (expansion 16), k 32, batch {args.tp_batch}, {args.tp_steps} steps on "
          f"{source}; {torch.get_num_threads()} threads; {load()}", flush=True)
    peak_before = matmul_peak()
    rows = []
    for arch in ARCHS:
        _, m = train_sae(X, SAEConfig(d_in=d, n_atoms=F, k=32, arch=arch),
                         TrainConfig(steps=args.tp_steps, batch_size=args.tp_batch, eval_samples=1024), progress=False)
        rows.append((arch, m["samples_per_second"]))
        print(f"  {arch}: {m['samples_per_second']:.0f} samples/s", flush=True)
    peak = max(peak_before, matmul_peak())
    print(f"\nfloat32 matmul peak (4096x4096 @ 4096x4096, best of 5, before and after): {peak / 1e9:.1f} GFLOP/s")
    print(f"{'architecture':<12} {'samples/s':>10} {'GFLOP/s':>8} {'of peak':>8}")
    for arch, sps in rows:
        flops = 10 * F * d * sps
        print(f"{arch:<12} {sps:10.0f} {flops / 1e9:8.1f} {flops / peak:8.1%}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parts", default="arch,ooc,throughput")
    ap.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--arch-atoms", type=int, default=1536, help="atoms in (a) (default 1536 = 4 x 384)")
    ap.add_argument("--arch-batch", type=int, default=512)
    ap.add_argument("--arch-steps", type=int, default=400)
    ap.add_argument("--relu-bisect", type=int, default=4)
    ap.add_argument("--archs", default=",".join(ARCHS), help="architectures in (a)")
    ap.add_argument("--ooc-file-gib", type=float, default=3.0)
    ap.add_argument("--ooc-budget-gib", type=float, default=1.0)
    ap.add_argument("--ooc-buffer-mb", type=float, default=64)
    ap.add_argument("--ooc-atoms", type=int, default=256)
    ap.add_argument("--cache-dir", default="/work/cache")
    ap.add_argument("--tp-batch", type=int, default=1024)
    ap.add_argument("--tp-steps", type=int, default=20)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    print(f"machine: {platform.node()}, {cpu_name()}, {os.cpu_count()} cores; Python {platform.python_version()}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads; {load()}")
    print("command: " + " ".join([os.path.basename(sys.executable)] + sys.argv))
    parts = {"arch": part_arch, "ooc": part_ooc, "throughput": part_throughput}
    for name in args.parts.split(","):
        t = time.perf_counter()
        parts[name](args)
        print(f"[{name}: {time.perf_counter() - t:.0f} s]", flush=True)


if __name__ == "__main__":
    main()
