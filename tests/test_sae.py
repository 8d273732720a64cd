"""Stage 1 (the SAE) on real MiniLM embeddings of 400 20 Newsgroups documents."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from saetm.errors import SaetmError
from saetm.sae.data import BatchStream
from saetm.sae.models import SAEConfig, batch_topk_mask, build_sae, encode_activations
from saetm.sae.persist import load_sae, save_sae
from saetm.sae.train import TrainConfig, list_checkpoints, train_sae

from _streams import Interrupting

ARCHS = ["topk", "batchtopk", "relu", "jumprelu"]
SMALL = dict(n_atoms=256, k=16)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # Tiny matrices: one thread is faster than two, and steadier on a shared machine.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def X(ng_embeddings):
    return ng_embeddings


def _train(X, arch="batchtopk", steps=60, **tc):
    cfg = SAEConfig(d_in=X.shape[1], arch=arch, **SMALL)
    return train_sae(X, cfg, TrainConfig(steps=steps, batch_size=64, **tc), progress=False)


def _assert_same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


@pytest.fixture(scope="module")
def trained(X):
    return {arch: _train(X, arch, steps=300) for arch in ARCHS}


# ----- the four architectures ----------------------------------------------------------
@pytest.mark.parametrize("arch", ARCHS)
def test_architecture_trains_to_sane_fit(trained, arch):
    sae, m = trained[arch]
    assert m["fve"] > 0.7, m
    assert 0 <= m["dead_fraction"] < 0.5, m
    assert m["steps"] == 300 and m["samples_seen"] == 300 * 64 and m["samples_per_second"] > 0
    norms = sae.W_dec.norm(dim=0)
    assert torch.allclose(norms, torch.ones_like(norms), atol=1e-5)
    assert 2 <= m["l0"] <= 80, m  # sparse: a few dozen of 256 atoms per document


@pytest.mark.parametrize("arch", ["topk", "batchtopk"])
def test_l0_is_k(trained, X, arch):
    sae, m = trained[arch]
    assert abs(m["l0"] - 16) < 0.5, m
    A = encode_activations(sae, X[:200])
    assert abs(A.getnnz(axis=1).mean() - 16) < 3


def test_topk_encode_activations_is_csr_with_at_most_k_per_row(trained, X):
    sae, _ = trained["topk"]
    A = encode_activations(sae, X, batch_size=97)  # chunks that do not divide n
    assert isinstance(A, sp.csr_matrix) and A.shape == (400, 256) and A.dtype == np.float32
    assert A.getnnz(axis=1).max() <= 16 and (A.data > 0).all()
    with torch.no_grad():
        dense = sae.encode(sae.preprocess(torch.from_numpy(X))).numpy()
    np.testing.assert_array_equal(A.toarray(), dense)


def test_batchtopk_threshold_valid_after_five_steps(X):
    sae, m = _train(X, "batchtopk", steps=5)
    assert 0 < float(sae.threshold) < 10 and m["threshold"] == float(sae.threshold)
    assert abs(m["l0"] - 16) < 0.5  # calibrated on data, not a half-warmed EMA
    assert abs(encode_activations(sae, X).getnnz(axis=1).mean() - 16) < 0.5


def test_batch_topk_mask_exact_including_crowded_rows():
    g = torch.Generator().manual_seed(0)
    h = torch.rand(32, 100, generator=g)
    h[3] += 5.0  # one row holds far more than its share of the winners
    for n_keep in (10, 64, 200):
        mask = batch_topk_mask(h, n_keep)
        expected = torch.zeros(h.numel(), dtype=torch.bool)
        expected[h.flatten().topk(n_keep).indices] = True
        assert torch.equal(mask.flatten(), expected)


def test_parallel_gradient_removed():
    sae = build_sae(SAEConfig(d_in=8, n_atoms=16, k=2, arch="topk"))
    sae.W_dec.grad = torch.randn(8, 16)
    sae.remove_parallel_grads()
    assert (sae.W_dec.grad * sae.W_dec).sum(dim=0).abs().max() < 1e-5


def test_scale_normalisation_and_epochs(X):
    cfg = SAEConfig(d_in=384, input_norm="scale", encoder_name="minilm", **SMALL)
    sae, m = train_sae(3 * X, cfg, TrainConfig(epochs=2, batch_size=100), progress=False)
    assert m["steps"] == 8 and m["epochs"] == 2.0
    assert sae.config.input_scale == pytest.approx(1 / 3, rel=1e-4) and cfg.input_scale is None
    x = sae.preprocess(torch.from_numpy(3 * X))
    assert float(x.pow(2).sum(dim=1).mean()) == pytest.approx(1.0, rel=1e-4)


# ----- seeds, checkpoints, resume ------------------------------------------------------
def test_same_seed_same_model(X):
    a, _ = _train(X, "batchtopk", steps=15, seed=3)
    b, _ = _train(X, "batchtopk", steps=15, seed=3)
    c, _ = _train(X, "batchtopk", steps=15, seed=4)
    _assert_same_weights(a, b)
    assert not torch.equal(a.W_dec, c.W_dec)


@pytest.mark.parametrize("arch", ["batchtopk", "jumprelu"])
def test_resume_is_bit_identical(X, tmp_path, arch):
    kw = dict(steps=16, dead_after=128)  # small dead_after: AuxK and its counters are live
    ref, m_ref = _train(X, arch, **kw)
    cfg = SAEConfig(d_in=384, arch=arch, **SMALL)
    tc = TrainConfig(batch_size=64, checkpoint_dir=str(tmp_path), checkpoint_every=4, keep_checkpoints=2, **kw)
    with pytest.raises(KeyboardInterrupt):
        train_sae(Interrupting(X, 64, seed=0, limit=10), cfg, tc, progress=False)
    assert [s for s, _ in list_checkpoints(tmp_path)] == [4, 8]  # bounded: only the last two kept
    with pytest.raises(SaetmError, match="resume=True"):
        train_sae(X, cfg, tc, progress=False)
    tc.resume = True
    resumed, m = train_sae(X, cfg, tc, progress=False)
    _assert_same_weights(ref, resumed)
    assert m["fve"] == m_ref["fve"] and m["samples_seen"] == m_ref["samples_seen"]


_KILLED_RUN = textwrap.dedent("""
    import sys, time, torch
    torch.set_num_threads(1)
    from saetm.sae.data import BatchStream
    from saetm.sae.models import SAEConfig
    from saetm.sae.train import TrainConfig, train_sae

    class Slow(BatchStream):
        def next_batch(self):
            time.sleep(0.05)
            return super().next_batch()

    path, ckpt = sys.argv[1], sys.argv[2]
    train_sae(Slow(path, 64, seed=0), SAEConfig(d_in=384, n_atoms=256, k=16),
              TrainConfig(steps=40, batch_size=64, checkpoint_dir=ckpt, checkpoint_every=3), progress=False)
""")


def test_sigkill_then_resume_is_bit_identical(X, tmp_path):
    path = tmp_path / "emb.npy"
    np.save(path, X)
    ckpt = tmp_path / "ckpt"
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_RUN, str(path), str(ckpt)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None:
            steps = [s for s, _ in list_checkpoints(ckpt)]
            if steps and steps[-1] >= 9:
                break
            time.sleep(0.02)
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    last = list_checkpoints(ckpt)[-1][0]
    assert 9 <= last < 40
    cfg = SAEConfig(d_in=384, n_atoms=256, k=16)
    resumed, _ = train_sae(str(path), cfg, TrainConfig(steps=40, batch_size=64, checkpoint_dir=str(ckpt),
                                                       checkpoint_every=3, resume=True), progress=False)
    ref, _ = train_sae(str(path), cfg, TrainConfig(steps=40, batch_size=64), progress=False)
    _assert_same_weights(ref, resumed)


# ----- save / load ---------------------------------------------------------------------
@pytest.mark.parametrize("arch", ARCHS)
def test_save_load_round_trip(trained, X, tmp_path, arch):
    sae, m = trained[arch]
    save_sae(sae, tmp_path, extra_meta={"metrics": m, "training_data": {"n_docs": np.int64(400)}})
    info = json.loads((tmp_path / "sae.json").read_text())
    assert info["config"]["input_norm"] == "l2" and info["meta"]["training_data"]["n_docs"] == 400
    loaded = load_sae(tmp_path)
    assert type(loaded) is type(sae) and loaded.config == sae.config
    assert loaded.meta["metrics"]["fve"] == m["fve"]
    a, b = encode_activations(sae, X), encode_activations(loaded, X)
    assert (a != b).nnz == 0


def test_float16_storage_loads_as_float32(trained, X, tmp_path):
    sae, _ = trained["batchtopk"]
    save_sae(sae, tmp_path / "f32")
    save_sae(sae, tmp_path / "f16", dtype="float16")
    size = lambda d: (tmp_path / d / "sae.safetensors").stat().st_size  # noqa: E731
    assert size("f16") < 0.6 * size("f32")
    loaded = load_sae(tmp_path / "f16")
    assert loaded.W_dec.dtype == torch.float32 and float(loaded.threshold) == float(sae.threshold)
    with torch.no_grad():
        x = sae.preprocess(torch.from_numpy(X))
        assert torch.allclose(sae.pre_acts(x), loaded.pre_acts(x), atol=2e-3)


def test_load_errors_are_clear(trained, tmp_path):
    with pytest.raises(SaetmError, match="not a folder"):
        load_sae(tmp_path / "nothing")
    sae, _ = trained["topk"]
    save_sae(sae, tmp_path)
    (tmp_path / "sae.safetensors").write_bytes(b"garbage")
    with pytest.raises(SaetmError, match="corrupt"):
        load_sae(tmp_path)
    save_sae(sae, tmp_path)
    info = json.loads((tmp_path / "sae.json").read_text())
    (tmp_path / "sae.json").write_text(json.dumps({**info, "format_version": 99}))
    with pytest.raises(SaetmError, match="upgrade saetm"):
        load_sae(tmp_path)
    (tmp_path / "sae.json").write_text("{not json")
    with pytest.raises(SaetmError, match="not valid JSON"):
        load_sae(tmp_path)
    (tmp_path / "sae.json").unlink()
    with pytest.raises(SaetmError, match="missing"):
        load_sae(tmp_path)


# ----- user mistakes -------------------------------------------------------------------
def test_wrong_dimension_and_nan_are_clear(trained, X):
    sae, _ = trained["topk"]
    with pytest.raises(SaetmError, match="have 512 columns but the SAE expects 384"):
        encode_activations(sae, np.zeros((3, 512), np.float32))
    bad = X[:10].copy()
    bad[7, 5] = np.nan
    with pytest.raises(SaetmError, match="row 7"):
        encode_activations(sae, bad)
    with pytest.raises(SaetmError, match="NaN"):
        _train(bad, steps=1)
    with pytest.raises(SaetmError, match="384 columns but the SAE expects 512"):
        train_sae(X, SAEConfig(d_in=512), TrainConfig(steps=1), progress=False)
    with pytest.raises(SaetmError, match="architecture"):
        SAEConfig(d_in=384, arch="gated")
    with pytest.raises(SaetmError, match="either steps or epochs"):
        TrainConfig(steps=3, epochs=1)


# ----- the data stream -----------------------------------------------------------------
def test_stream_resumes_exactly_and_covers_every_row_once_per_epoch(X):
    a = BatchStream(X, 48, seed=1, block_rows=64, buffer_rows=128)  # 7 blocks, several buffers
    first = [a.next_batch() for _ in range(3)]
    state = a.state_dict()
    rest = [a.next_batch() for _ in range(12)]
    b = BatchStream(X, 48, seed=1, block_rows=64, buffer_rows=128)
    b.load_state_dict(json.loads(json.dumps(state)))
    for want in rest:
        np.testing.assert_array_equal(b.next_batch(), want)
    epoch = np.concatenate(first + rest)[:400]
    assert np.unique(epoch, axis=0).shape[0] == np.unique(X, axis=0).shape[0]
    with pytest.raises(SaetmError, match="other data"):
        BatchStream(X[:300], 48, seed=1).load_state_dict(state)


def test_stream_over_shards_and_ranks(X, tmp_path):
    for i, (s, e) in enumerate([(0, 150), (150, 300), (300, 400)]):
        np.save(tmp_path / f"shard{i}.npy", X[s:e])
    ranks = [BatchStream(tmp_path, 50, seed=0, rank=r, world_size=2, block_rows=50) for r in range(2)]
    rows = [np.concatenate([s.next_batch() for _ in range(s.epoch_rows // 50)]) for s in ranks]
    assert sum(len(r) for r in rows) == 400
    together = np.concatenate(rows)
    assert np.unique(together, axis=0).shape[0] == np.unique(X, axis=0).shape[0]
    one = BatchStream([tmp_path / "shard0.npy", tmp_path / "shard1.npy", X[300:]], 400, seed=0)
    assert one.n_rows == 400 and one.dim == 384


def test_stream_reads_parquet(X, tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    table = pa.table({"id": np.arange(400), "embedding": pa.array(list(X), type=pa.list_(pa.float32()))})
    pq.write_table(table, tmp_path / "emb.parquet", row_group_size=100)
    s = BatchStream(tmp_path / "emb.parquet", 100, seed=0)
    assert (s.n_rows, s.dim, len(s.blocks)) == (400, 384, 4)
    got = np.concatenate([s.next_batch() for _ in range(4)])
    assert np.unique(got, axis=0).shape[0] == np.unique(X, axis=0).shape[0]
    np.testing.assert_array_equal(np.sort(s.sample(400), axis=0), np.sort(X, axis=0))
