"""Distributed SAE training and EM: 2 gloo processes on this machine vs one process.

One ``torch.multiprocessing.spawn`` run (module fixture) does all the distributed work
and saves what each rank ends with; the tests compare it with single-process runs.

How the SAE comparison gets the same global batches: each rank reads its half of the
64-row batches a single-process stream serves (``_RankHalf``), trains with 32 rows,
and DDP averages the two half-batch gradients, which is the gradient of the mean
over the whole 64-row batch. TopK selects per sample and the firing counters are
merged, so the result equals the single-process one up to summation order (as long
as AuxK is idle: its loss is normalised by each process's own residual variance).
"""

import json
import os
import socket
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from saetm.encoders.cache import EmbeddingCache
from saetm.encoders.distributed import encode_sharded
from saetm.encoders.static import StaticEncoder
from saetm.encoders.text import encode_cached


class ChunkEncoder(StaticEncoder):
    """The static encoder with a fixed IDF table (all 1) and cached: a fast encoder whose
    chunks the sharded encoding caches (the real static encoder is never cached)."""

    cacheable = True

    def __init__(self):
        super().__init__(idf=np.ones(29525, np.float32))
from saetm.errors import SaetmError
from saetm.sae.data import BatchStream
from saetm.sae.distributed import (ProcessInfo, global_batch_topk, init_distributed, local_batch_size,
                                   process_info, shutdown)
from saetm.sae.models import SAEConfig, batch_topk_mask, encode_activations
from saetm.sae.persist import load_sae
from saetm.sae.train import TrainConfig, train_sae
from saetm.words.em import fit_feature_words, normalize_theta
from saetm.words.vocab import build_vocabulary

from _streams import Interrupting

WORLD = 2
TOPK = dict(d_in=384, n_atoms=256, k=8, arch="topk")
BTK = dict(d_in=384, n_atoms=256, k=8, arch="batchtopk")
# No feature goes dead in 30 steps: AuxK, normalised per process, stays out of the comparison.
EXACT = TrainConfig(steps=30, dead_after=10**7)
# 4 steps with features dead after one batch: AuxK works from the second step on.
SHARED = TrainConfig(steps=4, batch_size=64, dead_after=64)
EM_SPLITS = {"uneven": [0, 150, 400], "empty rank": [0, 0, 400]}
EM_SETTINGS = {"uneven": dict(idf=True, max_iter=30, tol=0.0),
               "empty rank": dict(background_weight=0.0, max_iter=10, tol=0.0)}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _RankHalf(BatchStream):
    """Rank r's rows r·b .. (r+1)·b of the batches a one-process stream of 2b rows serves."""

    def __init__(self, X, b, rank, world):
        super().__init__(X, b, seed=0)
        self.whole = BatchStream(X, b * world, seed=0)
        self.rank_slice = slice(rank * b, (rank + 1) * b)

    def next_batch(self):
        return self.whole.next_batch()[self.rank_slice]


def _state(sae) -> dict:
    return {k: v.detach().numpy().copy() for k, v in sae.state_dict().items()} | {
        "samples_since_fired": sae.samples_since_fired.numpy().copy()}


def _worker(rank: int, world: int, port: int, work: str) -> None:
    torch.set_num_threads(1)
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    from saetm.words.distributed import fit_feature_words_distributed

    info = init_distributed(backend="gloo")
    assert info == process_info() and (info.rank, info.world_size) == (rank, world)
    work = Path(work)
    out = {}
    try:
        X = np.load(work / "X.npy")
        sae, m = train_sae(_RankHalf(X, 32, rank, world), SAEConfig(**TOPK), EXACT, progress=False)
        out |= {f"topk.{k}": v for k, v in _state(sae).items()}
        out["topk.metrics"] = np.array([m["samples_seen"], m["batch_size"], m["world_size"]])

        # BatchTopK with live dead-feature counters: interrupted, resumed == uninterrupted.
        path = str(work / "X.npy")
        tc = TrainConfig(steps=16, batch_size=64, dead_after=128)
        ref, _ = train_sae(path, SAEConfig(**BTK), tc, progress=False)
        tc = replace(tc, checkpoint_dir=str(work / "ckpt"), checkpoint_every=4)
        try:  # block_rows=50: what train_sae picks for 400 rows on 2 processes
            train_sae(Interrupting(path, 32, seed=0, rank=rank, world_size=world, block_rows=50, limit=10),
                      SAEConfig(**BTK), tc, progress=False)
        except KeyboardInterrupt:
            pass
        resumed, _ = train_sae(path, SAEConfig(**BTK), replace(tc, resume=True), progress=False)
        out |= {f"btk.{k}": v for k, v in _state(ref).items()}
        out |= {f"resumed.{k}": v for k, v in _state(resumed).items()}

        # Every process holds all rows: each trains on its share of the one-process batches.
        # BatchTopK's cut-off, AuxK's dead features and normaliser are those of the global batch.
        shared, _ = train_sae(X, SAEConfig(**BTK), SHARED, progress=False)
        out |= {f"shared.{k}": v for k, v in _state(shared).items()}
        h = torch.from_numpy(np.load(work / "h.npy"))
        mine = h[rank * 96:(rank + 1) * 96]
        mask, smallest = global_batch_topk(mine, 8 * len(h), batch_topk_mask(mine, 8 * len(h)))
        out |= {"topk_mask": mask.numpy(), "topk_smallest": smallest.numpy()}

        os.environ["SAETM_ENCODE_CHUNK"] = "64"  # 7 chunks over 2 processes
        texts = json.loads((work / "texts.json").read_text())
        out["encoded"] = encode_sharded(ChunkEncoder(), texts, cache=EmbeddingCache(work / f"cache{rank}"),
                                        show_progress=False)

        theta, counts = sp.load_npz(work / "theta.npz").tocsr(), sp.load_npz(work / "counts.npz").tocsr()
        for name, splits in EM_SPLITS.items():
            rows = slice(splits[rank], splits[rank + 1])
            fw = fit_feature_words_distributed(theta[rows], counts[rows], **EM_SETTINGS[name])
            B = fw.feature_words
            out |= {f"em.{name}.B.data": B.data, f"em.{name}.B.indices": B.indices, f"em.{name}.B.indptr": B.indptr,
                    f"em.{name}.background": fw.background, f"em.{name}.feature_prob": fw.feature_prob,
                    f"em.{name}.nll": np.array(fw.nll_history)}
    finally:
        shutdown()
    np.savez(work / f"rank{rank}.npz", **out)


@pytest.fixture(scope="module")
def work(tmp_path_factory, ng_embeddings, ng_corpus):
    work = tmp_path_factory.mktemp("distributed")
    X = ng_embeddings
    np.save(work / "X.npy", X)
    single, _ = train_sae(BatchStream(X, 64, seed=0), SAEConfig(**TOPK), EXACT, progress=False)
    _, counts = build_vocabulary(ng_corpus.texts, min_df=3)
    sp.save_npz(work / "theta.npz", normalize_theta(encode_activations(single, X)))
    sp.save_npz(work / "counts.npz", counts)
    np.save(work / "h.npy", np.random.default_rng(0).standard_normal((192, 512)).astype(np.float32))
    (work / "texts.json").write_text(json.dumps(ng_corpus.texts))
    torch.multiprocessing.spawn(_worker, args=(WORLD, _free_port(), str(work)), nprocs=WORLD)
    ranks = [dict(np.load(work / f"rank{r}.npz")) for r in range(WORLD)]
    return {"dir": work, "single": single, "ranks": ranks}


def _part(d: dict, prefix: str) -> dict:
    return {k[len(prefix) + 1:]: v for k, v in d.items() if k.startswith(prefix + ".")}


def test_two_processes_train_the_one_process_model(work):
    r0, r1 = (_part(r, "topk") for r in work["ranks"])
    for k in r0:  # every rank holds the same model, bit for bit
        np.testing.assert_array_equal(r0[k], r1[k], err_msg=k)
    samples_seen, batch_size, world_size = r0["metrics"]
    assert (samples_seen, batch_size, world_size) == (30 * 64, 64, 2)
    for k, v in work["single"].state_dict().items():
        np.testing.assert_allclose(r0[k], v.numpy(), atol=1e-5, err_msg=k)
    np.testing.assert_array_equal(r0["samples_since_fired"], work["single"].samples_since_fired.numpy())


def test_distributed_resume_is_bit_identical_and_state_stays_in_sync(work):
    r0, r1 = work["ranks"]
    for prefix in ("btk", "resumed"):
        a, b = _part(r0, prefix), _part(r1, prefix)
        for k in a:  # merged counters and BatchTopK threshold: the same on both ranks
            np.testing.assert_array_equal(a[k], b[k], err_msg=f"{prefix}.{k}")
    ref, resumed = _part(r0, "btk"), _part(r0, "resumed")
    assert (ref["samples_since_fired"] > 0).any() and (ref["samples_since_fired"] == 0).any()
    for k in ref:
        np.testing.assert_array_equal(ref[k], resumed[k], err_msg=k)
    ckpt = json.loads(sorted((work["dir"] / "ckpt").glob("*.json"))[-1].read_text())
    assert [s["rank"] for s in ckpt["streams"]] == [0, 1] and ckpt["samples_seen"] == 16 * 64


def test_processes_holding_all_rows_train_on_the_one_process_batches(work):
    X = np.load(work["dir"] / "X.npy")
    single, _ = train_sae(X, SAEConfig(**BTK), SHARED, progress=False)
    assert (single.samples_since_fired >= 64).any()  # some features were dead: AuxK took part
    r0, r1 = (_part(r, "shared") for r in work["ranks"])
    for k, v in _state(single).items():
        np.testing.assert_array_equal(r0[k], r1[k], err_msg=k)
        np.testing.assert_allclose(r0[k], v, atol=1e-5, err_msg=k)


def test_batchtopk_cutoff_is_that_of_the_global_batch(work):
    h = torch.from_numpy(np.load(work["dir"] / "h.npy"))
    ref = batch_topk_mask(h, 8 * len(h))
    masks = [r["topk_mask"] for r in work["ranks"]]
    np.testing.assert_array_equal(np.concatenate(masks), ref.numpy())
    for r in work["ranks"]:
        assert r["topk_smallest"] == h[ref].min().item()


def test_sharded_encoding_equals_one_process(work, ng_corpus, monkeypatch):
    monkeypatch.setenv("SAETM_ENCODE_CHUNK", "64")
    ref = encode_cached(ChunkEncoder(), ng_corpus.texts, cache=False, show_progress=False)
    for r in work["ranks"]:
        np.testing.assert_array_equal(r["encoded"], ref)
    # each process stored the chunks it encoded (0, 2, 4, 6 and 1, 3, 5) in its own cache
    assert [len(list((work["dir"] / f"cache{r}").glob("*.npy"))) for r in range(WORLD)] == [4, 3]


@pytest.mark.parametrize("name", list(EM_SPLITS))
def test_distributed_em_matches_single_process(work, name):
    d = work["dir"]
    theta, counts = sp.load_npz(d / "theta.npz").tocsr(), sp.load_npz(d / "counts.npz").tocsr()
    ref = fit_feature_words(theta, counts, **EM_SETTINGS[name])
    r0, r1 = (_part(r, f"em.{name}") for r in work["ranks"])
    for k in r0:
        np.testing.assert_array_equal(r0[k], r1[k], err_msg=k)
    B = ref.feature_words
    np.testing.assert_array_equal(r0["B.indptr"], B.indptr)  # the union of the ranks' supports
    np.testing.assert_array_equal(r0["B.indices"], B.indices)
    np.testing.assert_allclose(r0["B.data"], B.data, atol=1e-6)
    np.testing.assert_allclose(r0["background"], ref.background, atol=1e-7)
    np.testing.assert_allclose(r0["feature_prob"], ref.feature_prob, rtol=1e-5)
    assert len(r0["nll"]) == len(ref.nll_history)
    np.testing.assert_allclose(r0["nll"], ref.nll_history, rtol=1e-7)


def test_torchrun_train_sae_cli(work, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("WORLD_SIZE", None)
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={WORLD}", "--master_addr=127.0.0.1",
           f"--master_port={_free_port()}", "-m", "saetm", "train-sae", str(work["dir"] / "X.npy"),
           "--out", str(tmp_path / "sae"), "--n-atoms", "256", "--k", "8", "--steps", "12", "--batch-size", "64",
           "--encoder-name", "minilm", "--checkpoint-every", "5", "-q"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "on 2 process(es)" in proc.stdout
    sae = load_sae(tmp_path / "sae")
    assert sae.config.encoder_name == "minilm" and sae.config.arch == "batchtopk"
    assert sae.meta["metrics"]["world_size"] == 2 and sae.meta["metrics"]["samples_seen"] == 12 * 64
    assert sae.meta["training_data"]["n_rows"] == 400 and sae.meta["training_data"]["dim"] == 384
    ckpt = json.loads((tmp_path / "sae" / "checkpoints" / "ckpt-000000012.json").read_text())
    assert len(ckpt["streams"]) == 2


# ----- no processes needed ----------------------------------------------------------------
def test_single_process_defaults_and_mistakes(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert init_distributed() == process_info() == ProcessInfo()
    assert local_batch_size(64, ProcessInfo(0, 4)) == 16
    with pytest.raises(SaetmError, match="multiple of 3"):
        local_batch_size(64, ProcessInfo(0, 3))
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    with pytest.raises(SaetmError, match="launch with torchrun"):
        init_distributed()


def test_cli_train_sae_single_process_and_errors(work, tmp_path, capsys):
    from saetm.cli import main

    out = tmp_path / "sae"
    args = ["train-sae", str(work["dir"] / "X.npy"), "--out", str(out), "--expansion", "1", "--k", "8",
            "--steps", "5", "--batch-size", "64", "--arch", "topk", "-q"]
    assert main(args) == 0
    sae = load_sae(out)
    assert sae.config.n_atoms == 384 and sae.meta["metrics"]["steps"] == 5
    assert main(args) == 2 and "already holds a trained SAE" in capsys.readouterr().err
    other = ["train-sae", args[1], "--out", str(tmp_path / "other"), "--checkpoint-dir", str(out / "checkpoints")]
    assert main(other) == 2
    assert "--resume" in capsys.readouterr().err
    assert main(["train-sae", str(tmp_path / "missing.npy"), "--out", str(tmp_path / "x")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_torchrun_fit_matches_one_process(ng_corpus, tmp_path):
    """`saetm fit` under torchrun: 2 processes encode, train the SAE and run EM together,
    and save the model one process saves, up to float summation order."""
    from saetm.model import SAETM

    docs = tmp_path / "docs.jsonl"
    docs.write_text("".join(json.dumps({"text": t}) + "\n" for t in ng_corpus.texts))
    fit = ["-m", "saetm", "fit", str(docs), "--encoder", "static", "--sae", "train", "--arch", "topk",
           "--n-atoms", "512", "--k", "8", "--sae-steps", "100", "--topics", "5", "--min-df", "3"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SAETM_ENCODE_CHUNK": "64"}
    env.pop("WORLD_SIZE", None)
    one = subprocess.run([sys.executable, *fit, "--out", str(tmp_path / "one"), "-q"], capture_output=True,
                         text=True, env={**env, "SAETM_CACHE": str(tmp_path / "cache1")}, timeout=600)
    assert one.returncode == 0, one.stderr[-3000:]
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={WORLD}",
                          "--master_addr=127.0.0.1", f"--master_port={_free_port()}", *fit,
                          "--out", str(tmp_path / "two")], capture_output=True, text=True,
                         env={**env, "SAETM_CACHE": str(tmp_path / "cache2")}, timeout=600)
    assert two.returncode == 0, two.stderr[-3000:]
    assert "fitting on 2 processes" in two.stderr
    assert two.stdout.count("top words") == 1  # rank 0 alone prints

    a, b = SAETM.load(tmp_path / "one"), SAETM.load(tmp_path / "two")
    reports = [json.loads((tmp_path / d / "model.json").read_text())["fit_report"]["sae"] for d in ("one", "two")]
    assert [r["world_size"] for r in reports] == [1, 2]
    for k, v in a.sae_.state_dict().items():
        np.testing.assert_allclose(b.sae_.state_dict()[k].numpy(), v.numpy(), atol=1e-5, err_msg=k)
    for name in ("theta_", "feature_words_", "doc_topics_"):
        np.testing.assert_allclose(getattr(b, name).toarray(), getattr(a, name).toarray(), atol=1e-5, err_msg=name)
    np.testing.assert_allclose(b.background_, a.background_, rtol=1e-5)
    np.testing.assert_allclose(b.feature_prob_, a.feature_prob_, rtol=1e-5)
    np.testing.assert_array_equal(b.atom_topic_, a.atom_topic_)
    assert ({t: [w for w, _ in ws] for t, ws in b.get_topics(10).items()}
            == {t: [w for w, _ in ws] for t, ws in a.get_topics(10).items()})
    # the static encoder is never cached: every process fits the IDF table on all posts and encodes them
    assert not list((tmp_path / "cache2").rglob("*.npy"))
