"""Bad input, on purpose: every case gives exit code 2, one line that says what was wrong
and what to do, no traceback (unless --debug), and no output files.

Most cases run `saetm.cli.main` in this process (fast); a representative subset runs
`python -m saetm` in a fresh process, exactly as a user would.
"""

import json
import logging

import numpy as np
import pytest
import scipy.sparse as sp

from saetm.errors import SaetmError
from saetm.model import SAETM

from _reliability import N_DOCS, TINY, assert_one_line_error, fit_argv, run_main, run_saetm


@pytest.fixture(scope="module")
def bad(tmp_path_factory, tiny_files, ng_corpus):
    """A folder of broken inputs next to the good ones."""
    d = tmp_path_factory.mktemp("bad")
    docs = [json.loads(line) for line in (tiny_files / "docs.jsonl").read_text().splitlines()]
    (d / "empty.jsonl").write_bytes(b"")
    (d / "latin1.csv").write_bytes("text\ncaf\xe9 cr\xe8me\n".encode("latin-1"))
    (d / "docs.xml").write_text("<docs/>")
    (d / "garbage.jsonl").write_text("this is not json\n")
    (d / "header-only.csv").write_text("text,id\n")
    (d / "mixed.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in ["a text", 7, {"a": 1}, "more"]))
    (d / "all-empty.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in ["", None, "  ", "\t"]))
    (d / "stopwords.jsonl").write_text("".join(json.dumps({"text": "the and of to"}) + "\n" for _ in range(N_DOCS)))
    emb = np.load(tiny_files / "emb.npy")
    for name, arr in {"nan": emb.copy(), "inf": emb.copy(), "dim": emb[:, :100], "rows": emb[:50],
                      "int": (emb * 100).astype(np.int32), "text": np.full((N_DOCS, 3), "x"),
                      "complex": emb.astype(np.complex64), "flat": emb[0]}.items():
        if name == "nan":
            arr[5, 3] = np.nan
        if name == "inf":
            arr[7, 0] = np.inf
        np.save(d / f"{name}.npy", arr)
    raw = (tiny_files / "emb.npy").read_bytes()
    (d / "truncated.npy").write_bytes(raw[: len(raw) // 2])
    np.save(d / "objects.npy", np.array([{"a": 1}] * 3, dtype=object), allow_pickle=True)
    (d / "docs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in docs))
    return d


def _fit(tiny_files, bad, out, docs=None, emb="emb", extra=()):
    argv = fit_argv(tiny_files, out, *extra)
    if docs is not None:  # a file of its own: only a text field
        argv[1] = str(bad / docs)
        for flag in ("--id-field", "--label-field"):
            i = argv.index(flag)
            del argv[i:i + 2]
    if emb is None:
        i = argv.index("--embeddings")
        del argv[i:i + 2]
    elif emb != "emb":
        argv[argv.index("--embeddings") + 1] = str(bad / f"{emb}.npy")
    return argv


# (case id, documents file, embeddings, extra flags, words the message must contain)
CASES = [
    ("input missing", "nope.jsonl", "emb", (), ["does not exist"]),
    ("input empty", "empty.jsonl", "emb", (), ["is empty"]),
    ("not utf-8", "latin1.csv", "emb", (), ["not UTF-8", "re-save it as UTF-8"]),
    ("wrong format", "docs.xml", "emb", (), ["unsupported extension", ".jsonl"]),
    ("not json", "garbage.jsonl", "emb", (), ["line 1 is not valid JSON"]),
    ("header only", "header-only.csv", "emb", (), ["no documents"]),
    ("unknown text field", None, "emb", ("--text-field", "body"), ["no field 'body'", "available fields"]),
    ("unknown date field", None, "emb", ("--date-field", "when"), ["no field 'when'", "'text'"]),
    ("mixed types in text", "mixed.jsonl", None, (), ["row 2", "dict", "not text"]),
    ("all documents empty", "all-empty.jsonl", None, (), ["all 4 documents", "empty"]),
    ("min_df above corpus", None, "emb", ("--min-df", "500"), ["min_df=500", "lower --min-df (min_df)"]),
    ("vocabulary ends up empty", None, "emb", ("--min-df", "58"), ["vocabulary is empty", "lower --min-df (min_df)"]),
    ("only stop words", "stopwords.jsonl", "emb", ("--min-df", "1"), ["vocabulary is empty"]),
    ("embeddings nan", None, "nan", (), ["NaN", "row 5"]),
    ("embeddings inf", None, "inf", (), ["infinite", "row 7"]),
    ("embeddings rows", None, "rows", (), ["50 rows", f"{N_DOCS} documents"]),
    ("embeddings dtype text", None, "text", (), ["not numbers", "float32"]),
    ("embeddings dtype complex", None, "complex", (), ["complex64", "float32"]),
    ("embeddings pickled objects", None, "objects", (), ["Python objects", "allow_pickle=False"]),
    ("embeddings 1-d", None, "flat", (), ["2-D", "reshape"]),
    ("embeddings truncated", None, "truncated", (), ["truncated", "re-save"]),
    ("embeddings missing", None, "nope", (), ["does not exist"]),
    ("topics < 1", None, "emb", ("--topics", "0"), ["--topics", "at least 1"]),
    ("topics not an integer", None, "emb", ("--topics", "2.5"), ["--topics", "whole number"]),
    ("topics not a number", None, "emb", ("--topics", "many"), ["--topics", "whole number"]),
    ("topics > atoms", None, "emb", ("--topics", "300"), ["n_topics=300", "n_atoms=256"]),
    ("topics > used atoms", None, "emb", ("--topics", "255"), ["n_topics=255", "--topics (n_topics) to at most"]),
    ("k = atoms", None, "emb", ("--k", "256"), ["k=256", "n_atoms=256", "--k"]),
    ("k > atoms", None, "emb", ("--k", "1000"), ["k=1000", "smaller"]),
    ("atoms < 2", None, "emb", ("--n-atoms", "1"), ["n_atoms", "at least 2"]),
    ("negative seed", None, "emb", ("--seed", "-3"), ["seed", "-3"]),
    ("seed too large", None, "emb", ("--seed", str(2**40)), ["seed", "between 0"]),
    ("unknown arch", None, "emb", ("--arch", "gated"), ["--arch", "invalid choice"]),
    ("zero min_df", None, "emb", ("--min-df", "0"), ["--min-df", "at least 1"]),
    ("zero max_features", None, "emb", ("--max-features", "0"), ["--max-features", "at least 1"]),
    ("unknown sae", None, "emb", ("--sae", "no-such-sae"), ["no-such-sae", "existing SAE folder"]),
    ("unknown option", None, "emb", ("--topicz", "3"), ["unrecognized arguments"]),
]


@pytest.mark.parametrize("case, docs, emb, extra, needles", CASES, ids=[c[0] for c in CASES])
def test_fit_rejects_bad_input_with_one_line(case, docs, emb, extra, needles, tiny_files, bad, tmp_path):
    out = tmp_path / "out"
    rc, _, err = run_main(_fit(tiny_files, bad, out, docs, emb, extra))
    assert_one_line_error(rc, err, *needles)
    assert not out.exists(), f"{case}: left {sorted(p.name for p in out.iterdir())}"


def test_wrong_dimension_for_a_given_sae(tiny_files, bad, tiny_model_dir, tmp_path):
    out = tmp_path / "out"
    rc, _, err = run_main(_fit(tiny_files, bad, out, None, "dim", ("--sae", tiny_model_dir / "sae")))
    assert_one_line_error(rc, err, "100 columns", "SAE expects 384", "encoder")
    assert not out.exists()


@pytest.mark.parametrize("argv, needles", [
    (["retopic", "{model}", "--topics", "300"], ["n_topics=300", "--topics (n_topics) to at most"]),
    (["retopic", "{model}", "--topics", "0"], ["--topics", "at least 1"]),
    (["retopic", "{missing}", "--topics", "3"], ["not a directory"]),
    (["topics", "{missing}"], ["not a directory"]),
    (["transform", "{model}", "{docs}", "--embeddings", "{bad}/dim.npy", "--out", "{out}/w.npz"], ["SAE expects 384"]),
    (["transform", "{model}", "{docs}", "--embeddings", "{bad}/rows.npy", "--out", "{out}/w.npz"], ["50 rows"]),
    (["transform", "{model}", "{docs}", "--out", "{out}/w.txt"], ["use .npz"]),
    (["transform", "{model}", "{bad}/latin1.csv", "--out", "{out}/w.npz"], ["not UTF-8"]),
])
def test_other_commands_reject_bad_input(argv, needles, model_copy, tiny_files, bad, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    fill = dict(model=model_copy, missing=tmp_path / "missing", docs=tiny_files / "docs.jsonl", bad=bad, out=out)
    before = {p: p.read_bytes() for p in model_copy.rglob("*") if p.is_file()}
    rc, _, err = run_main([a.format(**fill) for a in argv])
    assert_one_line_error(rc, err, *needles)
    assert list(out.iterdir()) == []
    assert {p: p.read_bytes() for p in model_copy.rglob("*") if p.is_file()} == before, "the model was changed"


def test_empty_documents_are_skipped_with_a_count(tiny_files, tmp_path, caplog):
    """None, NaN, "" and blank documents are skipped with a count; outputs stay aligned with the input."""
    rows = [json.loads(line) for line in (tiny_files / "docs.jsonl").read_text().splitlines()]
    for i, value in BLANKS.items():
        rows[i]["text"] = value
    (tmp_path / "docs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))  # NaN → JSON NaN
    argv = fit_argv(tiny_files, tmp_path / "out")
    argv[1] = str(tmp_path / "docs.jsonl")
    with caplog.at_level(logging.WARNING, logger="saetm"):
        rc, _, err = run_main(argv)
    assert rc == 0, err
    assert any("skipped 4 empty documents" in r.getMessage() for r in caplog.records), caplog.text
    assert sp.load_npz(tmp_path / "out" / "doc_topics.npz").shape[0] == N_DOCS  # one row per input row
    ids = SAETM.load(tmp_path / "out").documents_["id"]
    # the reader does not keep the ids of skipped rows; the kept rows keep theirs, in place
    assert [ids[i] for i in range(N_DOCS) if i not in BLANKS] == [f"d{i}" for i in range(N_DOCS) if i not in BLANKS]


BLANKS = {0: None, 10: "", 20: "   ", 30: float("nan")}


def test_empty_documents_get_no_topic(ng_corpus, ng_embeddings):
    """Without given embeddings, empty documents are not encoded and get no topic."""
    lookup = dict(zip(ng_corpus.texts[:N_DOCS], ng_embeddings[:N_DOCS]))
    encoder = lambda texts: np.stack([lookup[t] for t in texts])  # noqa: E731  (the real MiniLM embeddings)
    texts = list(ng_corpus.texts[:N_DOCS])
    for i in BLANKS:
        texts[i] = "" if i % 20 else " \t "
    m = SAETM(n_topics=4, encoder=encoder, cache=False, **TINY).fit(texts)
    assert all(m.doc_topics_[i].nnz == 0 for i in BLANKS) and m.doc_topics_[1].nnz > 0
    with pytest.raises(SaetmError, match="not strings"):
        SAETM(n_topics=4, encoder=encoder, cache=False, **TINY).fit(texts[:5] + [None])


def test_documents_without_vocabulary_words_are_counted(ng_corpus, ng_embeddings, caplog):
    texts = list(ng_corpus.texts[:N_DOCS])
    for i in range(0, N_DOCS, 10):
        texts[i] = "!!! ??? ... 123"  # no token of the vocabulary
    with caplog.at_level(logging.WARNING, logger="saetm"):
        m = SAETM(n_topics=4, **TINY).fit(texts, ng_embeddings[:N_DOCS])
    assert any("12 of 120 documents contain no vocabulary word" in r.getMessage() for r in caplog.records), caplog.text
    assert m.doc_topics_.shape == (N_DOCS, 4) and m.doc_topics_[0].nnz > 0  # still get topics from embeddings


@pytest.mark.parametrize("kwargs, call, needle", [
    ({}, lambda m, X, docs: m.fit(docs[:3] + [None] + docs[3:10], X[:11]), "not strings"),
    ({}, lambda m, X, docs: m.fit(docs[:5] + [float("nan")], X[:6]), "not strings"),
    ({}, lambda m, X, docs: m.fit(["", " ", "\n"], X[:3]), "all documents are empty"),
    ({}, lambda m, X, docs: m.fit(docs[:10], X[:10].astype(object)), "numeric"),
    ({}, lambda m, X, docs: m.fit(docs[:10], X[:10, :, None]), "2-D"),
    ({"n_topics": 2.5}, lambda m, X, docs: m.fit(docs[:10], X[:10]), "n_topics must be an integer"),
    ({"n_topics": True}, lambda m, X, docs: m.fit(docs[:10], X[:10]), "n_topics must be an integer"),
    ({"sae": {**TINY["sae"], "k": 0}}, lambda m, X, docs: m.fit(docs[:10], X[:10]), "k must be at least 1"),
    ({"clustering": {"tau": 0.0}}, lambda m, X, docs: m.fit(docs[:10], X[:10]), "tau"),
    ({"max_df": 1.5}, lambda m, X, docs: m.fit(docs[:10], X[:10]), "max_df"),
    ({"words": {"background_weight": 1.0}}, lambda m, X, docs: m.fit(docs[:10], X[:10]), "background_weight"),
    ({"words": {"em_tol": float("nan")}}, lambda m, X, docs: m.fit(docs[:10], X[:10]), "em_tol"),
    ({"clustering": {"word_vectors": "word2vec"}}, lambda m, X, docs: m.fit(docs[:10], X[:10]), "word_vectors"),
    ({"sae": {**TINY["sae"], "arch": "gated"}}, lambda m, X, docs: m.fit(docs[:10], X[:10]), "arch"),
])
def test_api_rejects_bad_input(kwargs, call, needle, ng_corpus, ng_embeddings):
    params = {**TINY, "n_topics": 4, **kwargs}
    with pytest.raises(SaetmError, match=needle) as info:
        call(SAETM(**params), ng_embeddings, list(ng_corpus.texts))
    assert "\n" not in str(info.value)


def test_api_retopic_rejects_bad_numbers(tiny_model_dir):
    m = SAETM.load(tiny_model_dir)
    n_used = int((m.feature_prob_ > 0).sum())
    for bad_t, needle in [(0, "at least 1"), (n_used + 1, f"to at most {n_used}"), ("3", "integer"),
                          (3.0, "integer"), (None, "integer")]:
        with pytest.raises(SaetmError, match=needle):
            m.retopic(bad_t)
    assert m.n_topics == 4


# --------------------------------------------------------------- in a real process
@pytest.mark.parametrize("case", ["not utf-8", "embeddings nan", "topics < 1"])
def test_real_process_gives_one_line_and_exit_2(case, tiny_files, bad, tmp_path):
    _, docs, emb, extra, needles = next(c for c in CASES if c[0] == case)
    proc = run_saetm(_fit(tiny_files, bad, tmp_path / "out", docs, emb, extra), cwd=tmp_path)
    assert_one_line_error(proc.returncode, proc.stderr, *needles)
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()], proc.stderr  # nothing else at all
    assert proc.stdout == "" and not (tmp_path / "out").exists()


def test_debug_shows_the_traceback(tiny_files, bad, tmp_path):
    proc = run_saetm(_fit(tiny_files, bad, tmp_path / "out", "latin1.csv", "emb", ("--debug",)), cwd=tmp_path)
    assert proc.returncode != 0 and "Traceback" in proc.stderr and "SaetmError" in proc.stderr


def test_truncated_memory_mapped_embeddings(bad, tmp_path):
    from saetm.io.readers import read_embeddings

    with pytest.raises(SaetmError, match="truncated"):
        read_embeddings(bad / "truncated.npy", mmap=True)
    rc, _, err = run_main(["train-sae", bad / "truncated.npy", "--out", tmp_path / "sae", "--steps", "5", "-q"])
    assert_one_line_error(rc, err, "truncated.npy", "numpy.save")
    assert not (tmp_path / "sae").exists()


def test_demo_does_not_replace_another_model(model_copy, tmp_path, monkeypatch):
    import saetm.io.datasets

    monkeypatch.setattr(saetm.io.datasets, "load_20newsgroups", lambda *a, **k: pytest.fail("demo started"))
    before = {p: p.read_bytes() for p in model_copy.rglob("*") if p.is_file()}
    rc, _, err = run_main(["demo", "--out", model_copy, "--docs", "50"])
    assert_one_line_error(rc, err, "already holds a saetm model", "--overwrite")
    assert {p: p.read_bytes() for p in model_copy.rglob("*") if p.is_file()} == before
