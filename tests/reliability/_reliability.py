"""Helpers of the reliability suite (fixtures are in conftest.py)."""

import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

N_DOCS = 120
TINY = dict(sae={"n_atoms": 256, "k": 8, "steps": 50}, min_df=3, seed=0, verbose=False)
TINY_FLAGS = ["--n-atoms", "256", "--k", "8", "--sae-steps", "50", "--min-df", "3", "--topics", "4", "-q"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
       "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def fit_argv(files: Path, out, *extra) -> list[str]:
    return ["fit", str(files / "docs.jsonl"), "--out", str(out), "--embeddings", str(files / "emb.npy"),
            "--id-field", "id", "--label-field", "group", *TINY_FLAGS, *extra]


def run_main(argv) -> tuple[int, str, str]:
    """``saetm.cli.main(argv)`` in this process: (exit code, stdout, stderr)."""
    from saetm.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main([str(a) for a in argv])
        except SystemExit as e:  # argparse
            rc = e.code
    return rc, out.getvalue(), err.getvalue()


def run_saetm(argv, cwd, timeout=300) -> subprocess.CompletedProcess:
    """``python -m saetm argv`` in a fresh process."""
    return subprocess.run([sys.executable, "-m", "saetm", *map(str, argv)], cwd=cwd, env=ENV, capture_output=True,
                          text=True, timeout=timeout)


def assert_one_line_error(rc: int, err: str, *needles: str) -> str:
    """Exit code 2, one `saetm: error: ...` line on stderr (log lines aside), no traceback."""
    assert rc == 2, err
    assert "Traceback" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("saetm: error:")]
    assert len(errors) == 1, err
    message = errors[0]
    for needle in needles:
        assert needle.lower() in message.lower(), message
    return message


def leftovers(directory: Path) -> list[str]:
    """Temporary files, staging folders and lock files under ``directory``."""
    if not directory.exists():
        return []
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*")
                  if p.name.endswith(".tmp") or ".saetm-staging-" in str(p) or p.name == ".saetm.lock")


def same_model(a, b) -> bool:
    """Two loaded models hold the same state, array for array."""
    import torch

    sa, sb = a.sae_.state_dict(), b.sae_.state_dict()
    return (a.vocab_ == b.vocab_ and (a.theta_ != b.theta_).nnz == 0
            and (a.feature_words_ != b.feature_words_).nnz == 0
            and np.array_equal(a.background_, b.background_) and np.array_equal(a.atom_topic_, b.atom_topic_)
            and np.array_equal(a.topics_.topic_words, b.topics_.topic_words)
            and (a.doc_topics_ != b.doc_topics_).nnz == 0 and sa.keys() == sb.keys()
            and all(torch.equal(sa[k], sb[k]) for k in sa))
