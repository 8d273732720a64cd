"""Property tests on randomly shaped inputs: the core numerics keep their invariants, and
no command line, however garbled, ends in a traceback.

- θ normalisation: non-zero rows sum to 1, the support is kept, bad values are refused;
- EM: B is row-stochastic on the atoms that see words and zero elsewhere, p0 sums to 1,
  the NLL never increases, B stays inside the support of θᵀc;
- stage 3: cluster_atoms / tree cuts / build_topics / retopic partition the used atoms
  exactly into T non-empty topics, for every T;
- the CLI: random argument lists exit with 0 or 2, never with a traceback.
"""

import contextlib
import io
import os
import shutil

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from saetm.errors import SaetmError
from saetm.topics.hierarchy import build_atom_tree, cut
from saetm.topics.merge import build_topics, cluster_atoms, doc_topics
from saetm.words.em import fit_feature_words, idf_weights, normalize_theta

# SAETM_FUZZ_SCALE=25 for a long hunt; the default keeps the suite fast
SCALE = float(os.environ.get("SAETM_FUZZ_SCALE", "1"))
FUZZ = settings(max_examples=int(40 * SCALE), deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def sparse_nonneg(draw, max_rows=12, max_cols=10, integers=False):
    """A random non-negative sparse matrix: random shape, density, empty rows and columns."""
    n, k = draw(st.integers(1, max_rows)), draw(st.integers(1, max_cols))
    seed = draw(st.integers(0, 2**32 - 1))
    density = draw(st.sampled_from([0.0, 0.1, 0.3, 0.7, 1.0]))
    rng = np.random.default_rng(seed)
    mask = rng.random((n, k)) < density
    if integers:
        values = rng.integers(1, 6, size=(n, k)).astype(np.float64)
    else:
        values = rng.choice([1e-30, 1e-6, 0.5, 1.0, 3.0, 1e6], size=(n, k)) * rng.random((n, k))
    return sp.csr_matrix(np.where(mask, values, 0.0))


# ------------------------------------------------------------------ θ normalisation
@FUZZ
@given(sparse_nonneg())
def test_normalize_theta(a):
    theta = normalize_theta(a)
    assert theta.dtype == np.float32 and theta.shape == a.shape
    sums = np.asarray(theta.sum(axis=1)).ravel()
    active = np.asarray((a > 0).sum(axis=1)).ravel() > 0
    assert np.allclose(sums[active], 1.0, atol=1e-5) and np.all(sums[~active] == 0)
    assert ((theta > 0) != (a > 0)).nnz == 0  # the same atoms stay active
    assert np.all(np.isfinite(theta.data)) and np.all(theta.data >= 0)


@FUZZ
@given(sparse_nonneg(), st.sampled_from([-1.0, np.nan, np.inf]))
def test_normalize_theta_refuses_bad_values(a, bad):
    assume(a.nnz > 0)
    a = a.copy()
    a.data[0] = bad
    with pytest.raises(SaetmError):
        normalize_theta(a)


# ------------------------------------------------------------------ EM
@st.composite
def em_problem(draw):
    acts = draw(sparse_nonneg(max_rows=10, max_cols=8))
    counts = draw(sparse_nonneg(max_rows=10, max_cols=12, integers=True))
    n = min(acts.shape[0], counts.shape[0])
    return normalize_theta(acts[:n]), counts[:n], draw(st.sampled_from([0.0, 0.3, 0.9])), draw(st.booleans())


@FUZZ
@given(em_problem())
def test_em_keeps_distributions_and_never_increases_nll(problem):
    theta, counts, pi, idf = problem
    weighted = sp.csr_matrix(counts.multiply(idf_weights(counts)[None, :]) if idf else counts)
    if pi == 0:  # without a background, documents without an active atom are ignored
        weighted = sp.csr_matrix(weighted.multiply(np.asarray(theta.sum(axis=1)) > 0))
    weighted.eliminate_zeros()
    try:
        fw = fit_feature_words(theta, counts, background_weight=pi, idf=idf, max_iter=30, tol=0.0)
    except SaetmError as e:
        assert weighted.nnz == 0, e  # refused only when no word is left to model
        return
    assert weighted.nnz > 0
    B = fw.feature_words
    K, V = theta.shape[1], counts.shape[1]
    assert B.shape == (K, V) and fw.background.shape == (V,) and fw.feature_prob.shape == (K,)
    assert np.all(B.data >= 0) and np.all(np.isfinite(B.data))
    # atom k gets a distribution iff it is active in a document with at least one (weighted) word
    sees = np.asarray((theta.T @ (weighted > 0).astype(np.float64)).sum(axis=1)).ravel() > 0
    rows = np.asarray(B.sum(axis=1)).ravel()
    assert np.allclose(rows[sees], 1.0, atol=1e-4), rows
    assert np.all(rows[~sees] == 0)
    # B lives on the support of θᵀc: an atom only gets words of documents it is active in
    support = (theta.T @ counts) > 0
    assert (sp.csr_matrix(B > 0) > support).nnz == 0
    assert np.isclose(fw.background.sum(), 1.0, atol=1e-5) and np.all(fw.background >= 0)
    assert np.allclose(fw.feature_prob, np.asarray(theta.mean(axis=0)).ravel(), atol=1e-6)
    nll = np.asarray(fw.nll_history)
    assert np.all(np.isfinite(nll))
    assert np.all(np.diff(nll) <= 1e-6 * np.maximum(1.0, np.abs(nll[:-1]))), nll


# ------------------------------------------------------------------ stage 3 partitions
@st.composite
def atoms(draw):
    n, d = draw(st.integers(1, 30)), draw(st.integers(1, 4))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    distinct = draw(st.integers(1, n))  # repeated embeddings: fewer distinct points than clusters
    emb = rng.normal(size=(distinct, d))[rng.integers(0, distinct, size=n)]
    weights = rng.random(n) * (rng.random(n) < draw(st.sampled_from([0.5, 0.9, 1.0])))
    assume(weights.max() > 0)
    return emb.astype(np.float32), weights


def _assert_partition(atom_topic, weights, T):
    used = weights > 0
    assert np.all(atom_topic[~used] == -1) and np.all(atom_topic[used] >= 0) and atom_topic.max() < T
    assert np.array_equal(np.unique(atom_topic[used]), np.arange(T))  # every topic has atoms


@FUZZ
@given(atoms(), st.data())
def test_stage3_partitions_the_used_atoms_exactly(problem, data):
    emb, weights = problem
    n_used = int((weights > 0).sum())
    T = data.draw(st.integers(1, n_used), label="T")
    tree = build_atom_tree(emb, weights)
    for init in (None, cut(tree, T)):
        if init is not None:
            _assert_partition(init, weights, T)
        atom_topic = cluster_atoms(emb, weights, T, seed=0, init=init)
        _assert_partition(atom_topic, weights, T)
        rng = np.random.default_rng(T)
        V = 7
        B = sp.csr_matrix(rng.random((len(weights), V)) * (weights > 0)[:, None])
        B = sp.csr_matrix(B.multiply(1 / np.maximum(np.asarray(B.sum(axis=1)), 1e-30)))
        topics = build_topics(B, weights, atom_topic, T)
        _assert_partition(topics.atom_topic, weights, T)
        # a relabelling of the same partition, numbered by prevalence
        pairs = set(zip(atom_topic[weights > 0].tolist(), topics.atom_topic[weights > 0].tolist()))
        assert len(pairs) == T
        assert topics.n_atoms.sum() == n_used and np.all(topics.n_atoms > 0)
        assert np.isclose(topics.prevalence.sum(), weights.sum()) and np.all(np.diff(topics.prevalence) <= 1e-12)
        assert np.allclose(topics.topic_words.sum(axis=1), 1.0, atol=1e-5)
        theta = normalize_theta(sp.csr_matrix(rng.random((5, len(weights))) * (weights > 0)))
        W = doc_topics(theta, topics.atom_topic, T)
        assert np.allclose(np.asarray(W.sum(axis=1)).ravel(), 1.0, atol=1e-5)
    with pytest.raises(SaetmError, match="out of range"):
        cluster_atoms(emb, weights, n_used + 1)


@pytest.fixture(scope="module")
def fitted(tiny_model_dir):
    from saetm.model import SAETM

    return SAETM.load(tiny_model_dir)


@settings(max_examples=int(12 * SCALE), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_retopic_partitions_the_atoms_for_any_T(fitted, data):
    used = fitted.feature_prob_ > 0
    T = data.draw(st.integers(1, int(used.sum())), label="T")
    fitted.retopic(T)
    _assert_partition(fitted.atom_topic_, fitted.feature_prob_, T)
    assert fitted.topics_.n_atoms.sum() == used.sum() and fitted.doc_topics_.shape[1] == T
    sums = np.asarray(fitted.doc_topics_.sum(axis=1)).ravel()
    assert np.allclose(sums[sums > 0], 1.0, atol=1e-4)


# ------------------------------------------------------------------ the command line
SUBCOMMANDS = ["fit", "retopic", "topics", "transform", "demo", "train-sae", "report"]
FLAGS = ["--out", "--topics", "--k", "--n-atoms", "--sae-steps", "--min-df", "--max-features", "--seed", "--arch",
         "--text-field", "--id-field", "--date-field", "--label-field", "--embeddings", "--sae", "--encoder",
         "--word-vectors", "--word-ranking", "--words", "--json", "--overwrite", "--idf", "--docs", "--full",
         "--steps", "--epochs", "--lr", "--batch-size", "--expansion", "--freq", "--title", "--resume",
         "--checkpoint-every", "--column", "--device", "-q", "--quiet", "--version", "--help", "-h", "--", "-"]
VALUES = ["0", "1", "3", "-1", "2.5", "1e9", "nan", "inf", "", " ", "many", "topk", "glove", "beta", "M",
          "MODEL", "DOCS", "EMB", "missing.jsonl", "out.npz", "out.csv", "out.txt", "x/y/z", "é", "\x00"]


@pytest.fixture
def cli_sandbox(tmp_path, tiny_model_dir, tiny_files, monkeypatch):
    """A folder with a model, documents and embeddings; the slow work is stubbed out."""
    import saetm.io.datasets
    import saetm.sae.train
    from saetm.model import SAETM

    shutil.copytree(tiny_model_dir, tmp_path / "MODEL")
    shutil.copy(tiny_files / "docs.jsonl", tmp_path / "DOCS")
    shutil.copy(tiny_files / "docs.jsonl", tmp_path / "docs.jsonl")
    shutil.copy(tiny_files / "emb.npy", tmp_path / "EMB")

    def stub(*args, **kwargs):
        raise SaetmError("stubbed in the fuzz test")

    monkeypatch.setattr(SAETM, "fit", stub)  # argument handling is under test, not training
    monkeypatch.setattr(saetm.io.datasets, "load_20newsgroups", stub)
    monkeypatch.setattr(saetm.sae.train, "train_sae", stub)
    if hasattr(SAETM, "report"):
        monkeypatch.setattr(SAETM, "report", stub)
    monkeypatch.chdir(tmp_path)
    return tmp_path


POSITIONAL = {"fit": [["DOCS"], ["docs.jsonl"]], "retopic": [["MODEL"]], "topics": [["MODEL"]],
              "transform": [["MODEL", "DOCS"]], "demo": [[]], "train-sae": [["EMB"]], "report": [["MODEL"]]}
tokens = st.one_of(st.sampled_from(SUBCOMMANDS), st.sampled_from(FLAGS), st.sampled_from(VALUES), st.text(max_size=6))


@st.composite
def command_lines(draw):
    """Half garbage, half nearly right: a command, its positionals, then flags with values."""
    if draw(st.booleans()):
        return draw(st.lists(tokens, max_size=8))
    command = draw(st.sampled_from(SUBCOMMANDS))
    argv = [command, *draw(st.sampled_from(POSITIONAL[command]))]
    for _ in range(draw(st.integers(0, 4))):
        argv.append(draw(st.sampled_from(FLAGS)))
        if draw(st.integers(0, 3)):
            argv.append(draw(st.one_of(st.sampled_from(VALUES), st.text(max_size=4))))
    return argv


@settings(max_examples=int(150 * SCALE), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(command_lines())
def test_random_command_lines_never_end_in_a_traceback(cli_sandbox, argv):
    from saetm.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as e:  # argparse: --help, --version, usage errors
            code = e.code
    event(f"{argv[0] if argv and argv[0] in SUBCOMMANDS else '(other)'}: exit {code}")
    assert code in (0, 2), (argv, code, err.getvalue())
    errors = [line for line in err.getvalue().splitlines() if line.startswith("saetm: error:")]
    assert len(errors) == (code == 2), (argv, err.getvalue())
    assert "Traceback" not in err.getvalue()
