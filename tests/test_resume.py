"""Resumable fits: the chunked embedding cache, and `saetm fit` killed and run again.

The subprocess test SIGKILLs a real `saetm fit` (MiniLM, 96 posts of 20 Newsgroups,
chunks of 16) once while it encodes and once while it trains its SAE, runs it again,
and compares every array and setting of the model it saves with an uninterrupted
run's (each run with its own cache folder).
"""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from saetm.encoders.cache import EmbeddingCache, chunk_bounds, content_key
from saetm.encoders.static import StaticEncoder
from saetm.encoders.text import TextEncoder, encode_cached
from saetm.errors import SaetmError
from saetm.io.persist import read_tensors

# what differs between two runs of the same fit: when, how fast, and the run's id
VOLATILE = {"saved_at", "fit_id", "topics_seal", "seconds", "samples_per_second", "train_seconds"}


class _Counting:
    """The static encoder as a callable that records how many texts each call got."""

    def __init__(self):
        self.static, self.calls = StaticEncoder(), []

    def __call__(self, texts):
        self.calls.append(len(texts))
        return self.static.encode(texts, show_progress=False)


def test_chunks_are_stored_as_they_finish_and_replaced_by_the_whole(ng_corpus, tmp_path, monkeypatch):
    monkeypatch.setenv("SAETM_ENCODE_CHUNK", "64")
    texts = ng_corpus.texts[:200]
    counting = _Counting()
    encoder = TextEncoder(counting, name="counting-static")
    cache = EmbeddingCache(tmp_path)
    # a run killed after two chunks left them in the cache
    for s, e in chunk_bounds(len(texts), 64)[:2]:
        cache.put(content_key(encoder.name, texts[s:e]), counting.static.encode(texts[s:e], show_progress=False))
    X = encode_cached(encoder, texts, cache=cache, show_progress=False)
    assert counting.calls == [64, 8]  # only the two chunks that were missing
    np.testing.assert_array_equal(X, counting.static.encode(texts, show_progress=False))
    # the whole corpus now has one entry; the chunk entries are gone
    assert [p.stem for p in tmp_path.glob("*.npy")] == [content_key(encoder.name, texts)]
    np.testing.assert_array_equal(encode_cached(encoder, texts, cache=cache, show_progress=False), X)
    assert counting.calls == [64, 8]
    # without a cache the same chunks are encoded, so the result does not depend on it
    np.testing.assert_array_equal(encode_cached(encoder, texts, cache=False, show_progress=False), X)
    assert counting.calls[2:] == [64, 64, 64, 8]


def test_chunk_size_setting_is_checked(monkeypatch):
    from saetm.encoders.cache import chunk_rows

    monkeypatch.setenv("SAETM_ENCODE_CHUNK", "0")
    with pytest.raises(SaetmError, match="SAETM_ENCODE_CHUNK"):
        chunk_rows()
    monkeypatch.setenv("SAETM_ENCODE_CHUNK", "")
    assert chunk_rows() == 2048


# ----- a real `saetm fit`, killed and resumed ---------------------------------------------
FIT = ["--sae", "train", "--n-atoms", "512", "--k", "8", "--sae-steps", "600", "--topics", "4",
       "--min-df", "2", "--seed", "3"]


def _start(docs: Path, out: Path, cache: Path, log: Path) -> subprocess.Popen:
    env = {**os.environ, "SAETM_CACHE": str(cache), "SAETM_ENCODE_CHUNK": "16", "OMP_NUM_THREADS": "1"}
    with open(log, "w") as f:  # a file, not a pipe: nobody reads while it runs
        return subprocess.Popen([sys.executable, "-m", "saetm", "fit", str(docs), "--out", str(out), *FIT],
                                stdout=subprocess.DEVNULL, stderr=f, env=env)


def _kill_when(proc: subprocess.Popen, pattern: str, folder: Path, log: Path, timeout: float = 300) -> str:
    """SIGKILL ``proc`` as soon as a file matching ``pattern`` appears under ``folder``;
    returns what it logged."""
    end = time.monotonic() + timeout
    while time.monotonic() < end and proc.poll() is None:
        if list(folder.glob(pattern)):
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return log.read_text()
        time.sleep(0.01)
    proc.kill()
    pytest.fail(f"no {pattern} appeared before the fit ended (rc {proc.wait()}): {log.read_text()[-2000:]}")


def _finish(proc: subprocess.Popen, log: Path) -> str:
    proc.wait(timeout=600)
    assert proc.returncode == 0, log.read_text()[-3000:]
    return log.read_text()


def _contents(model: Path) -> dict:
    """Every array and setting a model folder holds, without what differs from run to run."""
    def strip(x):
        if isinstance(x, dict):
            return {k: strip(v) for k, v in x.items() if k not in VOLATILE}
        return [strip(v) for v in x] if isinstance(x, list) else x

    out = {}
    for p in sorted(model.rglob("*")):
        name = str(p.relative_to(model))
        if p.suffix == ".json":
            out[name] = strip(json.loads(p.read_text()))
        elif p.suffix == ".safetensors":
            out |= {f"{name}:{k}": v for k, v in read_tensors(p).items()}
        elif p.suffix == ".npz":
            out |= {f"{name}:{k}": v for k, v in np.load(p).items()}
        elif p.suffix == ".parquet":
            out |= {f"{name}:{c}": v.to_numpy() for c, v in pd.read_parquet(p).items()}
    return out


def test_killed_fit_resumes_without_reencoding_and_ends_identical(ng_corpus, tmp_path):
    docs = tmp_path / "docs.jsonl"
    texts = ng_corpus.texts[:96]
    docs.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    n_chunks = len(chunk_bounds(sum(1 for t in texts if t.strip()), 16))

    logs = [tmp_path / f"log{i}.txt" for i in range(4)]
    _finish(_start(docs, tmp_path / "whole", tmp_path / "cache-whole", logs[0]), logs[0])

    cache, out = tmp_path / "cache", tmp_path / "resumed"
    # 1. killed while encoding, as soon as the first chunk is stored
    _kill_when(_start(docs, out, cache, logs[1]), "embeddings/*.npy", cache, logs[1])
    done = len(list((cache / "embeddings").glob("*.npy")))
    assert 1 <= done < n_chunks
    assert not (out / "model.json").exists()  # a killed fit leaves no model behind
    # 2. run again: encodes only the chunks not stored; killed after the SAE's first checkpoint
    err = _kill_when(_start(docs, out, cache, logs[2]), "sae/*.checkpoints/ckpt-*.json", cache, logs[2])
    assert f"{n_chunks - done} chunk(s) of 16 documents encoded, {done} read from the cache" in err, err[-3000:]
    # 3. run again to the end: the whole corpus's embeddings and the SAE's checkpoint are found
    err = _finish(_start(docs, out, cache, logs[3]), logs[3])
    assert "chunk(s)" not in err
    step = re.search(r"resuming from .*\(step (\d+) of 600\)", err)
    assert step and 0 < int(step.group(1)) < 600, err[-3000:]

    whole, resumed = _contents(tmp_path / "whole"), _contents(tmp_path / "resumed")
    assert whole.keys() == resumed.keys()
    for k, v in whole.items():
        if isinstance(v, np.ndarray):
            np.testing.assert_array_equal(resumed[k], v, err_msg=k)
        else:
            assert resumed[k] == v, k
