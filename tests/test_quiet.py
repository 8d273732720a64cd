"""Quiet runs print nothing: `saetm fit -q` and `SAETM(verbose=False)`, encoder loading included.

The encoder is only loaded when texts are encoded, so these runs skip the embedding cache."""

import json
import subprocess
import sys

# few documents: the point is loading the encoder, not the fit
N_DOCS = 60


def _noise(stderr: str) -> list[str]:
    """Lines of stderr that are not Python warnings (a library's DeprecationWarning is not ours to hide)."""
    lines = [line for line in stderr.replace("\r", "\n").splitlines() if line.strip()]
    return [line for line in lines if "Warning" not in line and not line.startswith("  ")]


def test_fit_quiet_prints_only_the_topics(ng_corpus, tmp_path):
    docs = tmp_path / "docs.jsonl"
    with open(docs, "w") as f:
        for t in ng_corpus.texts[:N_DOCS]:
            f.write(json.dumps({"text": t}) + "\n")
    cmd = [sys.executable, "-m", "saetm", "fit", str(docs), "--out", str(tmp_path / "m"), "--topics", "4",
           "--min-df", "2", "--no-cache"]
    proc = subprocess.run([*cmd, "-q"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert _noise(proc.stderr) == [], proc.stderr
    assert "fitted" not in proc.stdout and proc.stdout.splitlines()[0].split()[0] == "topic"

    # without -q: progress, and the timing summary after the topics
    proc = subprocess.run([*cmd, "--overwrite"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    summary = proc.stdout.strip().splitlines()[-1]
    assert summary.startswith(f"fitted {N_DOCS} documents (embed ") and f"model in {tmp_path / 'm'}/" in summary
    assert "Batches" in proc.stderr


def test_model_verbose_false_prints_nothing(ng_corpus, capfd):
    from saetm.model import SAETM

    capfd.readouterr()
    model = SAETM(n_topics=4, min_df=2, cache=False, verbose=False).fit(ng_corpus.texts[:N_DOCS])
    out = capfd.readouterr()
    assert model.n_topics == 4
    assert out.out == "" and _noise(out.err) == [], out.err
