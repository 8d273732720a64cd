"""Kill saetm at chosen moments, many times, paying for the imports once.

Run as ``python _kill_driver.py PLANS.json RESULTS.json`` (see test_interrupts.py). The
driver imports saetm, runs the work once uninterrupted (the reference, and a warm-up),
then forks one child per planned interruption. A child runs the same work through
``saetm.cli.main`` — the code path of ``python -m saetm`` — while writing a marker
each time it enters a phase (stage 1, stage 2, saving, renaming into place); the
driver sends SIGINT or SIGKILL once the child is inside the planned phase, at a seeded
random moment. Phases are slowed a little (sleeps around file writes and EM steps) so
the moments of interest are wide enough to hit.

Modes: ``fit`` (``saetm fit``), ``retopic`` (``saetm retopic`` on a copy of the
reference) and ``train-sae`` (``saetm train-sae`` with checkpoints, then resumed here
with ``--resume`` and compared with an uninterrupted run).
"""

import contextlib
import json
import os
import shutil
import signal
import sys
import time

import numpy as np
import torch

torch.set_num_threads(1)

import saetm.io.persist as persist  # noqa: E402
import saetm.model_files as model_files  # noqa: E402
import saetm.sae.stage as sae_stage  # noqa: E402
import saetm.topics.stage as topics_stage  # noqa: E402
import saetm.words.stage as words_stage  # noqa: E402
import saetm.words.em as em  # noqa: E402
from saetm.cli import main  # noqa: E402

PHASES = {  # function wrapped -> phase it starts
    # "words" is the vocabulary (before the SAE) and the EM of word distributions (after it; slowed below)
    (sae_stage, "get_sae"): "sae", (words_stage, "vocabulary"): "words", (words_stage, "feature_words"): "words",
    (topics_stage, "atom_embeddings"): "topics",
    (model_files, "save_model"): "save", (model_files, "save_topics"): "save", (model_files, "_commit"): "commit",
}


def instrument(marker_fd: int, slow: float) -> None:
    """In a child: write phase markers, and widen the windows worth hitting."""
    def mark(name):
        os.write(marker_fd, f"{name}\n".encode())

    for (module, attr), phase in PHASES.items():
        real = getattr(module, attr)

        def wrapped(*args, _real=real, _phase=phase, **kwargs):
            mark(_phase)
            try:
                return _real(*args, **kwargs)
            finally:
                mark(f"/{_phase}")

        setattr(module, attr, wrapped)
    real_publish, real_replace, real_stats = persist._publish, os.replace, em.accumulate_statistics

    def publish(tmp, path):
        time.sleep(slow)
        return real_publish(tmp, path)

    def replace(src, dst):
        time.sleep(slow)
        return real_replace(src, dst)

    def stats(*args, **kwargs):
        time.sleep(slow / 10)
        return real_stats(*args, **kwargs)

    persist._publish, os.replace, em.accumulate_statistics = publish, replace, stats


def quiet_child(log_path: str) -> None:
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)


def phase_at(marker_path: str) -> str:
    """The innermost phase the child was in at the end of its marker file."""
    stack = []
    with open(marker_path) as f:
        for line in f.read().split():
            if line.startswith("/"):
                if stack and stack[-1] == line[1:]:
                    stack.pop()
            else:
                stack.append(line)
    return stack[-1] if stack else "none"


def _tail(log: str) -> str:
    """The end of a child's log; on a busy machine a child can be killed before it opens it."""
    if not os.path.exists(log):
        return "(no log: the child was stopped before it started)"
    with open(log, errors="replace") as f:
        return f.read()[-2000:]


def run_child(work, target):
    """Fork a child that runs ``target()`` (returns an exit code) instrumented."""
    os.makedirs(work, exist_ok=True)
    marker = os.path.join(work, "markers")
    log = os.path.join(work, "log")
    marker_fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
    pid = os.fork()
    if pid == 0:  # child
        code = 3
        try:
            # A test run started in the background by a non-interactive shell (`pytest &`)
            # inherits SIGINT ignored, and Python then installs no Ctrl-C handler: restore
            # the terminal's behaviour, which is what these tests are about.
            signal.signal(signal.SIGINT, signal.default_int_handler)
            quiet_child(log)
            instrument(marker_fd, PLAN["slow"])
            code = target()
        except BaseException as e:  # anything escaping main() is a bug the test reports
            os.write(2, f"child crashed: {type(e).__name__}: {e}\n".encode())
            code = 4
        finally:
            os._exit(code if isinstance(code, int) else 5)
    os.close(marker_fd)
    return pid, marker, log


def interrupt(work, target, sig_name, phase, rng, max_wait=60.0):
    """Run ``target`` in a child and interrupt it inside ``phase``; returns a result record."""
    pid, marker, log = run_child(work, target)
    sig = {"INT": signal.SIGINT, "KILL": signal.SIGKILL}[sig_name]
    extra = float(rng.uniform(0.0, PLAN["slow"] * 2))  # a random moment inside the phase
    start, sent, landed = time.time(), False, None
    while time.time() - start < max_wait:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if phase_at(marker) == phase:
            time.sleep(extra)
            landed = phase_at(marker)
            if landed != phase:  # the phase ended during the pause (a short one, e.g. the vocabulary): wait for
                continue  # it to come back (the EM of stage 2 is "words" too) rather than kill elsewhere
            os.kill(pid, sig)
            sent = True
            _, status = os.waitpid(pid, 0)
            break
        time.sleep(0.002)
    else:
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    tail = _tail(log)
    return {"work": work, "signal": sig_name, "phase": phase, "landed": landed, "sent": sent, "code": code,
            "log": tail}


def mode_cli(plan, rng):
    """fit / retopic: argv has OUT where the model directory goes."""
    argv = plan["argv"]
    ref = os.path.join(plan["root"], "reference")
    if plan["mode"] == "retopic":
        shutil.copytree(plan["model"], ref)
    with open(os.devnull, "w") as null, contextlib.redirect_stdout(null):  # warm-up and reference, in this process
        assert main([a.replace("OUT", ref) for a in argv]) == 0
    results = []
    for i, (sig_name, phase) in enumerate(plan["runs"]):
        for attempt in range(plan.get("attempts", 4)):  # timing on a busy machine: retry a missed phase
            work = os.path.join(plan["root"], f"run{i}-{attempt}")
            out = os.path.join(work, "model")
            if plan["mode"] == "retopic":
                os.makedirs(work, exist_ok=True)
                shutil.copytree(plan["model"], out)
            args = [a.replace("OUT", out) for a in argv]
            record = interrupt(work, lambda: main(args), sig_name, phase, rng)
            record["out"] = out
            if record["landed"] == phase:
                break
        results.append(record)
    return {"reference": ref, "runs": results}


def mode_train_sae(plan, rng):
    """``saetm train-sae`` with checkpoints, interrupted at a random step, then ``--resume``d here."""
    from saetm.sae.models import BatchTopKSAE
    from saetm.sae.persist import load_sae

    argv = plan["argv"]
    ref = os.path.join(plan["root"], "reference")
    with open(os.devnull, "w") as null, contextlib.redirect_stdout(null):
        assert main([a.replace("OUT", ref) for a in argv]) == 0
    real_forward = BatchTopKSAE.training_forward

    def slow_forward(self, *args, **kwargs):  # a visible, interruptible step
        time.sleep(plan["slow"])
        return real_forward(self, *args, **kwargs)

    results = []
    for i, (sig_name, at) in enumerate(plan["runs"]):
        work = os.path.join(plan["root"], f"run{i}")
        out = os.path.join(work, "sae")
        args = [a.replace("OUT", out) for a in argv]

        def target():
            BatchTopKSAE.training_forward = slow_forward
            return main(args)

        pid, marker, log = run_child(work, target)
        time.sleep(at * plan["steps"] * plan["slow"])
        os.kill(pid, {"INT": signal.SIGINT, "KILL": signal.SIGKILL}[sig_name])
        _, status = os.waitpid(pid, 0)
        files = [os.path.join(d, n) for d, _, names in os.walk(out) for n in names]
        with open(os.devnull, "w") as null, contextlib.redirect_stdout(null):
            resumed = main(args + ["--resume"])
        a, b = load_sae(ref).state_dict(), load_sae(out).state_dict()
        tail = _tail(log)
        results.append({"signal": sig_name, "at": at, "code": os.waitstatus_to_exitcode(status), "log": tail,
                        "tmp_left": [f for f in files if f.endswith(".tmp")],
                        "checkpoints": len([f for f in files if f.endswith(".json") and "ckpt-" in f]),
                        "resumed": resumed, "same_weights": a.keys() == b.keys() and all(
                            torch.equal(a[k], b[k]) for k in a)})
    return {"reference": ref, "runs": results}


if __name__ == "__main__":
    PLANS = json.load(open(sys.argv[1]))  # {"fit": plan, "retopic": plan, "sae": plan}
    results = {}
    for name, PLAN in PLANS.items():
        rng = np.random.default_rng(PLAN["seed"])
        results[name] = mode_train_sae(PLAN, rng) if PLAN["mode"] == "train-sae" else mode_cli(PLAN, rng)
    with open(sys.argv[2], "w") as f:
        json.dump(results, f, indent=1)
