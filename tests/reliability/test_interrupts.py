"""Interrupted and concurrent work: killing saetm (SIGINT, SIGKILL) at random moments of
SAE training, interpretation (word distributions, topics) and saving never leaves a
model directory that loads but is wrong; SAE training resumes from its checkpoints to
the very weights of an uninterrupted run; two writers of one directory do not corrupt it.

The kills run in `_kill_driver.py`, which pays for the imports once and forks one child
per interruption; each child runs `saetm.cli.main`, the code path of `python -m saetm`.
"""

import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from saetm.errors import SaetmError
from saetm.model import SAETM

from _reliability import ENV, fit_argv, leftovers, same_model

DRIVER = Path(__file__).with_name("_kill_driver.py")
SEED = 20240611  # the random moments are seeded: a failure can be replayed
SIGNALS = ("INT", "KILL")


@pytest.fixture(scope="module")
def kills(tiny_files, tiny_model_dir, tmp_path_factory) -> dict:
    """Run every planned interruption in one driver process (one set of imports)."""
    root = tmp_path_factory.mktemp("kills")
    rng = np.random.default_rng(SEED)
    plans = {
        # --no-cache: every run trains its SAE, so kills can land in training (a cached SAE loads at once)
        "fit": {"mode": "fit", "argv": fit_argv(tiny_files, "OUT", "--no-cache"), "slow": 0.03,
                "runs": [[sig, phase] for phase in ("sae", "words", "save", "commit") for sig in SIGNALS]},
        "retopic": {"mode": "retopic", "argv": ["retopic", "OUT", "--topics", "3", "-q"], "model": str(tiny_model_dir),
                    "slow": 0.03, "runs": [[sig, phase] for phase in ("save", "commit") for sig in SIGNALS]},
        "sae": {"mode": "train-sae", "steps": 40, "slow": 0.02,
                "argv": ["train-sae", str(tiny_files / "emb.npy"), "--out", "OUT", "--steps", "40", "--n-atoms", "256",
                         "--k", "8", "--batch-size", "32", "--checkpoint-every", "4", "-q"],
                "runs": [[sig, float(rng.uniform(0.15, 0.9))] for sig in SIGNALS for _ in range(2)]},
    }
    for name, plan in plans.items():
        plan.update(root=str(root / name), seed=SEED)
        (root / name).mkdir()
    (root / "plans.json").write_text(json.dumps(plans))
    proc = subprocess.run([sys.executable, str(DRIVER), str(root / "plans.json"), str(root / "results.json")],
                          env=ENV, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((root / "results.json").read_text())


def _check_interrupted(run: dict, reference: SAETM, alternatives=()) -> str:
    """The one rule: the directory loads and equals a complete result, or refuses clearly."""
    out = Path(run["out"])
    where = f"{run['signal']} in {run['landed']} (planned {run['phase']}): {run['log'][-500:]}"
    assert "child crashed" not in run["log"] and "Traceback" not in run["log"], where
    if run["signal"] == "INT" and run["sent"]:
        assert run["code"] == 130, where
        assert run["log"].strip().splitlines()[-1] == "saetm: interrupted; nothing half-written was left behind"
        assert leftovers(out) == [], where  # no temp file, staging folder or lock after Ctrl-C
    if run["signal"] == "KILL" and run["sent"]:
        assert run["code"] == -9, where
    if not out.exists():
        return "absent"
    try:
        loaded = SAETM.load(out)
    except SaetmError as e:
        assert "no complete saetm model" in str(e), where  # the completion marker, and nothing worse
        return "refused"
    assert any(same_model(loaded, ref) for ref in (reference, *alternatives)), f"loads but is wrong: {where}"
    return "complete"


def test_killing_fit_never_leaves_a_wrong_model(kills):
    fit_kills = kills["fit"]
    reference = SAETM.load(fit_kills["reference"])
    outcomes = {}
    for run in fit_kills["runs"]:
        outcomes[(run["signal"], run["phase"], run["landed"])] = _check_interrupted(run, reference)
    phases = {(sig, landed) for sig, _, landed in outcomes}
    # every planned moment was hit at least once per signal: training, EM, writing, renaming
    assert {(s, p) for s in SIGNALS for p in ("sae", "words", "save", "commit")} <= phases, outcomes
    # Ctrl-C while files are renamed into place is held back until the switch is complete
    assert all(v == "complete" for (sig, _, landed), v in outcomes.items() if sig == "INT" and landed == "commit")
    # after Ctrl-C: nothing at all, or the complete model; never an incomplete directory
    assert all(v in ("absent", "complete") for (sig, _, _), v in outcomes.items() if sig == "INT"), outcomes


def test_after_sigkill_the_leftovers_are_harmless(kills):
    """A killed writer may leave a temp file, a staging folder and its lock: the next save
    into that directory is not blocked (the kernel dropped the lock) and cleans them up."""
    reference = SAETM.load(kills["fit"]["reference"])
    killed = [Path(r["out"]) for r in kills["fit"]["runs"] if r["signal"] == "KILL" and Path(r["out"]).exists()]
    assert killed
    for out in killed:
        reference.save(out, overwrite=True)
        assert leftovers(out) == [] and same_model(SAETM.load(out), reference)


def test_killing_retopic_keeps_a_consistent_model(kills, tiny_model_dir, caplog):
    result = kills["retopic"]
    before, after = SAETM.load(tiny_model_dir), SAETM.load(result["reference"])
    assert after.n_topics == 3
    for run in result["runs"]:
        assert _check_interrupted(run, before, [after]) == "complete"  # retopic never loses the model
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="saetm"):
            loaded = SAETM.load(run["out"])
        exported = json.loads((Path(run["out"]) / "topics.json").read_text())["n_topics"]
        # the exports agree with the model, or loading says how to rewrite them (SIGKILL mid-rename)
        assert exported == loaded.n_topics or "saetm retopic" in caplog.text, run


def test_sae_training_resumes_to_the_same_weights(kills):
    """Interrupt `saetm train-sae` (SIGINT, SIGKILL) at random steps; `--resume` continues from
    the last checkpoint and ends, on CPU with the same seed, with exactly the weights of an
    uninterrupted run."""
    for run in kills["sae"]["runs"]:
        assert run["resumed"] == 0 and run["same_weights"], run
        if run["signal"] == "INT":
            assert run["code"] == 130 and run["tmp_left"] == [], run
            assert run["log"].strip().splitlines()[-1].startswith("saetm: interrupted"), run
        else:
            assert run["code"] == -9, run
    assert any(run["checkpoints"] for run in kills["sae"]["runs"])  # some resumed mid-way, not from scratch


def test_two_fits_into_one_directory(tiny_files, tmp_path, tiny_model_dir):
    """Two `saetm fit` processes, same --out, same moment: one writes, the other refuses clearly."""
    out = tmp_path / "shared"
    argv = [sys.executable, "-m", "saetm", *fit_argv(tiny_files, out)]
    procs = [subprocess.Popen(argv, cwd=tmp_path, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    assert sorted(rc for rc, _ in results) == [0, 2], results
    err = next(e for rc, e in results if rc == 2)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert "another saetm process" in lines[0] or "already holds a saetm model" in lines[0], err
    assert leftovers(out) == []
    assert same_model(SAETM.load(out), SAETM.load(tiny_model_dir))


def test_sigint_in_a_real_process(tiny_files, tmp_path):
    """Ctrl-C on `python -m saetm fit` during SAE training: exit 130, one line, nothing written."""
    import signal
    import time

    out = tmp_path / "out"
    argv = [sys.executable, "-m", "saetm", *fit_argv(tiny_files, out, "--sae-steps", "100000")]
    # SIG_DFL in the child: a test run started with `pytest &` passes SIGINT on ignored
    proc = subprocess.Popen(argv, cwd=tmp_path, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    while not (out / ".saetm.lock").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(2.0)  # past reading the input: training 100,000 steps
    proc.send_signal(signal.SIGINT)
    rc, err = proc.wait(timeout=120), proc.stderr.read()
    assert rc == 130, err
    assert err.strip().splitlines() == ["saetm: interrupted; nothing half-written was left behind"], err
    assert not out.exists()
