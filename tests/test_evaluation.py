"""Evaluation measures on a real slice of 20 Newsgroups, checked against gensim and POT."""

import http.server
import json
import logging
import re
import sys
import threading

import numpy as np
import pytest
import scipy.sparse as sp

from saetm.errors import SaetmError
from saetm.evaluation.coherence import cooccurrence_counts, cv_coherence, npmi_coherence
from saetm.evaluation.judge import (
    OpenAIJudge,
    intruder_detection,
    llm_coherence,
    parse_intruder,
    parse_rating,
)
from saetm.evaluation.measures import (
    embedding_coherence,
    evaluate_topics,
    label_agreement,
    topic_diversity,
    wmd_diversity,
)

logging.getLogger("gensim").setLevel(logging.WARNING)
TOKEN = re.compile(r"[a-z][a-z]+")


# --------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def ng_tokens(ng_corpus):
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return [[w for w in TOKEN.findall(t.lower()) if w not in ENGLISH_STOP_WORDS] for t in ng_corpus.texts]


@pytest.fixture(scope="module")
def ng_counts(ng_tokens):
    from sklearn.feature_extraction.text import CountVectorizer

    cv = CountVectorizer(analyzer=lambda doc: doc, min_df=5)
    counts = cv.fit_transform(ng_tokens).tocsr()
    return counts, list(cv.get_feature_names_out())


@pytest.fixture(scope="module")
def ng_topics(ng_corpus, ng_counts):
    """Real topics: the top-10 class-TF-IDF words of each of the 20 newsgroups."""
    counts, vocab = ng_counts
    labels = np.asarray(ng_corpus.labels)
    classes = sorted(set(labels))
    C = np.stack([np.asarray(counts[labels == c].sum(axis=0)).ravel() for c in classes]).astype(float)
    score = C / C.sum(axis=1, keepdims=True) * np.log(1 + C.sum() / len(classes) / C.sum(axis=0))
    return [[vocab[i] for i in np.argsort(-s, kind="stable")[:10]] for s in score]


@pytest.fixture(scope="module")
def shuffled_topics(ng_topics):
    words = np.random.default_rng(0).permutation(np.concatenate(ng_topics))
    return words.reshape(len(ng_topics), -1).tolist()


@pytest.fixture(scope="module")
def glove():
    from saetm.topics.wordvectors import GloveVectors

    return GloveVectors()


def gensim_coherence(topics, texts, measure, window):
    from gensim.corpora import Dictionary
    from gensim.models.coherencemodel import CoherenceModel

    cm = CoherenceModel(topics=topics, texts=texts, dictionary=Dictionary(texts), coherence=measure,
                        topn=10, window_size=window, processes=1)
    return np.array(cm.get_coherence_per_topic())


# --------------------------------------------------------------------------- counting

def _naive_counts(words, docs, window):
    index = {w: i for i, w in enumerate(words)}
    joint, n = np.zeros((len(words), len(words))), 0
    for doc in docs:
        if window is None or len(doc) < window:
            wins = [doc]
        else:
            wins = [doc[s:s + window] for s in range(len(doc) - window + 1)]
        for win in wins:
            n += 1
            ids = sorted({index[t] for t in win if t in index})
            joint[np.ix_(ids, ids)] += 1
    return joint, n


def test_window_counts_equal_brute_force_and_gensim_accumulator():
    pytest.importorskip("gensim")
    from gensim.corpora import Dictionary
    from gensim.topic_coherence.text_analysis import WordOccurrenceAccumulator

    rng = np.random.default_rng(1)
    for _ in range(100):
        n_vocab = int(rng.integers(2, 8))
        n_docs = int(rng.integers(1, 6))
        docs = [[f"t{x}" for x in rng.integers(0, n_vocab, size=rng.integers(0, 15))] for _ in range(n_docs)]
        words = [f"t{x}" for x in rng.permutation(n_vocab + 1)[: rng.integers(1, n_vocab + 1)]]
        window = [None, 1, 2, 3, 5, 10][rng.integers(0, 6)]
        joint, n = cooccurrence_counts(words, docs, window)
        expected, n_expected = _naive_counts(words, docs, window)
        assert n == n_expected and np.array_equal(joint, expected)
        present = [w for w in words if any(w in d for d in docs)]
        if window is None or not present:
            continue
        d = Dictionary(docs)
        acc = WordOccurrenceAccumulator({d.token2id[w] for w in present}, d).accumulate(docs, window)
        ids = [d.token2id[w] for w in present]
        theirs = np.array([[acc[a] if a == b else acc[(a, b)] for b in ids] for a in ids], dtype=float)
        ours, n_ours = cooccurrence_counts(present, docs, window, gensim_compat=True)
        assert n_ours == acc.num_docs and np.array_equal(ours, theirs)


def test_gensim_quirk_only_affects_repeated_words():
    docs = [["a", "b", "a", "c"], ["a", "b", "c", "d", "e"]]
    exact, _ = cooccurrence_counts(["a", "b", "c"], docs, window=3)
    compat, _ = cooccurrence_counts(["a", "b", "c"], docs, window=3, gensim_compat=True)
    assert exact[0, 0] == 3 and compat[0, 0] == 2  # 'a' leaves the first window but is still in it
    unique = [["a", "b", "c", "d", "e"], ["c", "a", "e"]]
    assert np.array_equal(cooccurrence_counts(["a", "c"], unique, 2)[0],
                          cooccurrence_counts(["a", "c"], unique, 2, gensim_compat=True)[0])


def test_counts_reference_equals_token_reference(ng_tokens, ng_counts, ng_topics):
    counts, vocab = ng_counts
    in_vocab = [[w for w in t if w in set(vocab)] for t in ng_topics]
    a = npmi_coherence(in_vocab, ng_tokens)
    b = npmi_coherence(in_vocab, (counts, vocab))
    np.testing.assert_allclose(a["per_topic"], b["per_topic"], atol=1e-12)
    c = cv_coherence(in_vocab, (counts, vocab), window=None)
    np.testing.assert_allclose(c["per_topic"], cv_coherence(in_vocab, ng_tokens, window=None)["per_topic"], atol=1e-12)
    with pytest.raises(SaetmError, match="token lists"):
        cv_coherence(in_vocab, (counts, vocab))
    with pytest.raises(SaetmError, match="tokenised"):
        npmi_coherence(in_vocab, ["raw text, not tokens"])


# --------------------------------------------------------------------------- coherence vs gensim

def test_npmi_matches_gensim(ng_tokens, ng_topics):
    pytest.importorskip("gensim")
    topics = ng_topics[:8]
    whole_docs = max(map(len, ng_tokens)) + 1  # one window per document = document co-occurrence
    ours = npmi_coherence(topics, ng_tokens)
    theirs = gensim_coherence(topics, ng_tokens, "c_npmi", whole_docs)
    np.testing.assert_allclose(ours["per_topic"], theirs, atol=1e-9)
    assert ours["mean"] == pytest.approx(theirs.mean(), abs=1e-9)
    sliding = npmi_coherence(topics, ng_tokens, window=10, gensim_compat=True)
    np.testing.assert_allclose(sliding["per_topic"], gensim_coherence(topics, ng_tokens, "c_npmi", 10), atol=1e-9)


def test_cv_matches_gensim(ng_tokens, ng_topics):
    pytest.importorskip("gensim")
    topics = ng_topics[:8]
    theirs = gensim_coherence(topics, ng_tokens, "c_v", 110)
    ours = cv_coherence(topics, ng_tokens, gensim_compat=True)
    np.testing.assert_allclose(ours["per_topic"], theirs, atol=1e-9)
    exact = cv_coherence(topics, ng_tokens)  # counts repeated words correctly: close, not equal
    assert abs(exact["mean"] - theirs.mean()) < 0.1
    whole_docs = max(map(len, ng_tokens)) + 1
    np.testing.assert_allclose(cv_coherence(topics, ng_tokens, window=None)["per_topic"],
                               gensim_coherence(topics, ng_tokens, "c_v", whole_docs), atol=1e-9)


def test_coherence_ranks_real_topics_above_shuffled(ng_tokens, ng_topics, shuffled_topics):
    assert npmi_coherence(ng_topics, ng_tokens)["mean"] > npmi_coherence(shuffled_topics, ng_tokens)["mean"] + 0.05
    assert cv_coherence(ng_topics, ng_tokens)["mean"] > cv_coherence(shuffled_topics, ng_tokens)["mean"] + 0.05


def test_absent_words_never_occur():
    docs = [["apple", "pear"], ["apple", "pear", "fig"], ["fig"]]
    res = npmi_coherence([["apple", "pear", "unseen"]], docs)
    pair = npmi_coherence([["apple", "pear"]], docs)["mean"]
    assert res["mean"] == pytest.approx((pair - 1 - 1) / 3)
    short = npmi_coherence([["apple"], ["apple", "pear"]], docs)
    assert np.isnan(short["per_topic"][0]) and short["mean"] == pytest.approx(pair)


# --------------------------------------------------------------------------- diversity, vectors, labels

def test_topic_diversity():
    assert topic_diversity([["a", "b"], ["c", "d"]]) == 1.0
    assert topic_diversity([["a", "b"], ["a", "b"]]) == 0.5
    assert topic_diversity([list("abcd"), list("cdef")], top_n=2) == 1.0
    with pytest.raises(SaetmError):
        topic_diversity("not a list of topics")


def test_wmd_diversity_matches_gensim_wmdistance(glove, ng_topics):
    pytest.importorskip("gensim")
    from gensim.models import KeyedVectors

    topics = [[w for w in t if glove.coverage([w]) == 1.0] for t in ng_topics[:5]]
    words = sorted(set(sum(topics, [])))
    kv = KeyedVectors(vector_size=glove.dim)
    kv.add_vectors(words, glove.vectors_for(words))
    pairs = [(i, j) for i in range(len(topics)) for j in range(i + 1, len(topics))]
    expected = np.mean([kv.wmdistance(topics[i], topics[j]) for i, j in pairs])
    assert wmd_diversity(topics, glove) == pytest.approx(expected, rel=1e-5)
    assert wmd_diversity([topics[0], topics[0]], glove) == pytest.approx(0.0, abs=1e-6)


def test_wmd_without_pot_is_skipped_with_a_note(glove, ng_topics, monkeypatch):
    """POT is the optional extra 'eval': without it the scorecard says so and keeps the rest."""
    from saetm.evaluation.scorecard import scorecard

    monkeypatch.setitem(sys.modules, "ot", None)  # what an environment without POT looks like to import
    with pytest.raises(SaetmError, match=r"saetm\[eval\]"):
        wmd_diversity(ng_topics, glove)
    record = scorecard(ng_topics, word_vectors=glove)
    assert "wmd_diversity" not in record["measures"] and "embedding_coherence" in record["measures"]
    assert any("saetm[eval]" in note for note in record["notes"])


def test_vector_measures_prefer_real_topics(glove, ng_topics, shuffled_topics):
    real = embedding_coherence(ng_topics, glove)
    assert len(real["per_topic"]) == len(ng_topics)
    assert real["mean"] > embedding_coherence(shuffled_topics, glove)["mean"] + 0.03
    # Real topics are far apart from each other; shuffled ones all look alike.
    assert wmd_diversity(ng_topics, glove) > wmd_diversity(shuffled_topics, glove)


def test_label_agreement(ng_corpus):
    labels = np.asarray(ng_corpus.labels)
    classes, y = np.unique(labels, return_inverse=True)
    perm = np.random.default_rng(0).permutation(len(classes))
    onehot = np.eye(len(classes))[perm[y]] * 0.7
    res = label_agreement(onehot, labels)
    assert res["nmi"] == pytest.approx(1.0) and res["ari"] == pytest.approx(1.0) and res["unassigned"] == 0
    assert label_agreement(sp.csr_matrix(onehot), labels) == res
    noisy = np.random.default_rng(1).random((len(labels), 20))
    assert label_agreement(noisy, labels)["ari"] < 0.05
    empty = onehot.copy()
    empty[:50] = 0
    res_empty = label_agreement(sp.csr_matrix(empty), labels)
    assert res_empty["unassigned"] == pytest.approx(50 / len(labels)) and res_empty["nmi"] < 1.0
    with pytest.raises(SaetmError, match="labels"):
        label_agreement(onehot, labels[:-1])


# --------------------------------------------------------------------------- LLM judge protocol

@pytest.mark.parametrize("answer, expected", [
    ("85", 85.0), ("Rating: 85/100", 85.0), ("I'd rate these words 72.", 72.0),
    ("On a scale of 0 to 100, I would rate this 64.", 64.0), ("**Score:** 90", 90.0),
    ("8/10", 80.0), ("7 out of 10", 70.0), ("70-80", 75.0), ("100", 100.0), ("0", 0.0),
    ("150", None), ("-5", None), ("no idea", None), ("", None), (None, None),
])
def test_parse_rating(answer, expected):
    assert parse_rating(answer) == expected


@pytest.mark.parametrize("answer, expected", [
    ("banana", 2), ('"Banana".', 2), ("**BANANA**", 2), ("3", 2), ("Word 3", 2), ("#3", 2),
    ("The intruder is 'banana' because car, engine and wheel are vehicle parts.", 2),
    ("Car, engine and wheel relate to vehicles, so banana is the odd one out.", 2),
    ("Banana does not belong; car, engine and wheel do.", 2), ("U.S.", 4),
    ("car or banana", None), ("7", None), ("", None), (None, None),
])
def test_parse_intruder(answer, expected):
    assert parse_intruder(answer, ["car", "Engine", "banana", "wheel", "u.s."]) == expected


def _glove_judge(glove):
    """A deterministic stand-in for an LLM: judges relatedness by GloVe cosine."""

    def sims(words):
        v = glove.vectors_for(words)
        v = v / np.linalg.norm(v, axis=1, keepdims=True)
        return v @ v.T

    def judge(prompt):
        if "intruder" in prompt:
            words = re.findall(r"^\d+\. (.+)$", prompt, flags=re.M)
            odd = words[int(np.argmin(sims(words).sum(axis=1)))]
            return f'The intruder is "{odd.upper()}".'
        words = prompt.split("\n")[1].split(", ")
        s = sims(words)
        return f"Rating: {100 * max(0.0, s[np.triu_indices(len(words), 1)].mean()):.0f}/100"

    return judge


def test_llm_coherence_protocol(glove, ng_topics, shuffled_topics):
    judge = _glove_judge(glove)
    real = llm_coherence(ng_topics, judge)
    assert real["n_queries"] == 3 * len(ng_topics) and real["n_unparsed"] == 0
    assert real["mean"] > llm_coherence(shuffled_topics, judge)["mean"] + 3
    assert real == llm_coherence(ng_topics, judge)  # seeded
    shown = [r["words"] for r in real["responses"][:3]]
    assert all(sorted(w) == sorted(ng_topics[0][:5]) for w in shown) and shown[0] != shown[1]
    flaky = llm_coherence(ng_topics[:4], lambda p: "Rating: 40" if "god" in p or "car" in p else "I cannot say.")
    assert flaky["n_unparsed"] > 0 and all(v == 40 or np.isnan(v) for v in flaky["per_topic"])


def test_intruder_detection_protocol(glove, ng_topics):
    judge = _glove_judge(glove)
    res = intruder_detection(ng_topics, judge)
    assert res["chance"] == pytest.approx(0.2) and res["n_unparsed"] == 0 and res["n_skipped"] == 0
    assert res["accuracy"] > 0.5
    for r in res["responses"]:
        assert len(r["words"]) == 5 and r["intruder"] in r["words"]
        assert r["intruder"] not in ng_topics[r["topic"]]
    assert res == intruder_detection(ng_topics, judge)
    garbled = intruder_detection(ng_topics, lambda p: "hmm")
    assert garbled["accuracy"] == 0.0 and garbled["n_unparsed"] == len(ng_topics)


class _FakeOpenAI(http.server.BaseHTTPRequestHandler):
    requests: list = []

    def do_POST(self):  # noqa: N802 - http.server naming
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _FakeOpenAI.requests.append((self.path, dict(self.headers), body))
        if body["model"] == "broken":
            self.send_response(500)
            self.end_headers()
            self.wfile.write(b"server exploded")
            return
        prompt = body["messages"][-1]["content"]
        content = "Rating: 77" if "Rate" in prompt else re.findall(r"^1\. (.+)$", prompt, flags=re.M)[0]
        out = json.dumps({"id": "x", "object": "chat.completion",
                          "choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args):
        pass


@pytest.fixture
def fake_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FakeOpenAI)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    _FakeOpenAI.requests = []
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_openai_judge_against_local_server(fake_server, ng_topics):
    judge = OpenAIJudge(fake_server, model="tiny", api_key="secret", timeout=5)
    assert judge("Rate these words") == "Rating: 77"
    path, headers, body = _FakeOpenAI.requests[-1]
    assert path == "/v1/chat/completions" and headers["Authorization"] == "Bearer secret"
    assert body["temperature"] == 0 and body["model"] == "tiny"
    assert OpenAIJudge(fake_server + "/v1", "tiny").endpoint == OpenAIJudge(fake_server, "tiny").endpoint
    res = llm_coherence(ng_topics[:2], judge, n_shuffles=2)
    assert res["mean"] == 77 and res["n_unparsed"] == 0
    intr = intruder_detection(ng_topics[:5], OpenAIJudge(fake_server + "/v1/chat/completions", "tiny"))
    assert intr["n_unparsed"] == 0  # always names the first listed word: parsed, mostly wrong
    with pytest.raises(SaetmError, match="HTTP 500"):
        OpenAIJudge(fake_server, "broken", max_retries=0)("Rate")


def test_openai_judge_unreachable():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(SaetmError, match="could not reach"):
        OpenAIJudge(f"http://127.0.0.1:{port}", "tiny", timeout=2, max_retries=0)("Rate")
    with pytest.raises(SaetmError, match="http"):
        OpenAIJudge("localhost:8000", "tiny")


# --------------------------------------------------------------------------- everything at once

def test_evaluate_topics(ng_corpus, ng_tokens, ng_counts, ng_topics, glove):
    labels = np.asarray(ng_corpus.labels)
    classes, y = np.unique(labels, return_inverse=True)
    judge = _glove_judge(glove)
    res = evaluate_topics(ng_topics, reference=ng_tokens, word_vectors=glove, doc_topics=np.eye(20)[y],
                          labels=labels, judge=judge)
    assert set(res) == {"topic_diversity", "npmi", "cv", "wmd_diversity", "embedding_coherence", "nmi", "ari",
                        "unassigned", "llm_coherence", "llm_coherence_unparsed", "intruder_accuracy",
                        "intruder_unparsed"}
    assert res["npmi"] == pytest.approx(npmi_coherence(ng_topics, ng_tokens)["mean"])
    assert set(evaluate_topics(ng_topics, reference=ng_counts)) == {"topic_diversity", "npmi"}
    with pytest.raises(SaetmError, match="both"):
        evaluate_topics(ng_topics, labels=labels)


# --------------------------------------------------------------------------- SAETM.evaluate and `saetm evaluate`

def _top(model, n=25):
    return [[w for w, _ in model.get_topic(t, n)] for t in range(model.n_topics)]


def test_model_evaluate_matches_the_measures(fitted_model, ng_corpus, glove):
    from saetm.evaluation.scorecard import reference_tokens
    from saetm.words.vocab import count_words

    record = fitted_model.evaluate(details=True)
    m = record["measures"]
    assert m == fitted_model.evaluate()
    assert list(m) == ["topic_diversity", "wmd_diversity", "npmi", "cv", "embedding_coherence", "nmi", "ari",
                       "unassigned"]
    words, tokens = _top(fitted_model), reference_tokens(ng_corpus.texts)
    assert m["topic_diversity"] == topic_diversity(words, 25)
    assert m["wmd_diversity"] == pytest.approx(wmd_diversity(words, glove, 20), rel=1e-12)
    assert m["npmi"] == pytest.approx(npmi_coherence(words, tokens, top_n=10)["mean"], rel=1e-12)
    assert m["cv"] == pytest.approx(cv_coherence(words, tokens, top_n=10, window=110)["mean"], rel=1e-12)
    assert m["embedding_coherence"] == pytest.approx(embedding_coherence(words, glove, 10)["mean"], rel=1e-12)
    agree = label_agreement(fitted_model.doc_topics_, ng_corpus.labels)
    assert (m["nmi"], m["ari"], m["unassigned"]) == pytest.approx((agree["nmi"], agree["ari"], agree["unassigned"]))
    # The reference is tokenised as stage 2 counts words: NPMI on the model's own counts agrees.
    counts = count_words(ng_corpus.texts, fitted_model.vocab_)
    assert m["npmi"] == pytest.approx(npmi_coherence(words, (counts, fitted_model.vocab_))["mean"], rel=1e-9)
    assert record["n_topics"] == fitted_model.n_topics and len(record["per_topic"]["npmi"]) == fitted_model.n_topics
    assert record["topics"] == [w[:10] for w in words] and record["notes"] == []
    # top_n reaches the coherence measures only; other inputs are optional
    small = fitted_model.evaluate(reference=[t.split() for t in ng_corpus.texts], labels=None, top_n=5,
                                  word_vectors=None)
    assert small["npmi"] == pytest.approx(npmi_coherence(words, [t.split() for t in ng_corpus.texts],
                                                         top_n=5)["mean"])
    assert "wmd_diversity" not in small and small["topic_diversity"] == m["topic_diversity"]


def test_model_evaluate_with_a_deterministic_judge(fitted_model):
    def judge(prompt):  # rates by the words' length; names the shortest word as the intruder
        if "intruder" in prompt:
            return min(re.findall(r"^\d+\. (.+)$", prompt, flags=re.M), key=lambda w: (len(w), w))
        words = prompt.split("\n")[1].split(", ")
        return f"Rating: {min(100, 10 * np.mean([len(w) for w in words])):.0f}"

    record = fitted_model.evaluate(judge=judge, word_vectors=None, details=True)
    words = _top(fitted_model)
    rating = llm_coherence(words, judge, n_words=5, n_shuffles=3, seed=0)
    intruder = intruder_detection([w[:10] for w in words], judge, n_words=4, seed=0)
    m = record["measures"]
    assert m["llm_coherence"] == rating["mean"] and m["llm_coherence_unparsed"] == 0
    assert m["intruder_accuracy"] == intruder["accuracy"] and m["intruder_unparsed"] == 0
    assert len(record["judge_responses"]["coherence"]) == 3 * fitted_model.n_topics
    assert fitted_model.evaluate(judge=judge, word_vectors=None) == m  # seeded
    garbled = fitted_model.evaluate(judge=lambda p: "no idea", word_vectors=None)
    assert np.isnan(garbled["llm_coherence"]) and garbled["llm_coherence_unparsed"] == 3 * fitted_model.n_topics


def test_model_evaluate_refuses_bad_input(fitted_model, tmp_path):
    from saetm.model import SAETM

    with pytest.raises(SaetmError, match="got 5 labels for 400 documents"):
        fitted_model.evaluate(labels=["a"] * 5, word_vectors=None)
    with pytest.raises(SaetmError, match="top_n"):
        fitted_model.evaluate(top_n=1)
    with pytest.raises(SaetmError, match="word_vectors"):
        fitted_model.evaluate(word_vectors="fasttext")
    fitted_model.save(tmp_path / "m")
    loaded = SAETM.load(tmp_path / "m")  # its saved texts are cut to 1,000 characters
    with pytest.raises(SaetmError, match="cut to 1000 characters"):
        loaded.evaluate()
    labels = list(fitted_model.documents_["label"])
    labels[:7] = [None] * 7
    record = loaded.evaluate(reference=[["x", "y"]], labels=labels, word_vectors=None, details=True)
    assert "7 documents without a label left out of NMI / ARI" in record["notes"]


@pytest.fixture(scope="module")
def evaluate_files(tmp_path_factory, fitted_model, ng_corpus):
    """The session's fitted model saved once, its corpus as docs.jsonl, and labels files."""
    d = tmp_path_factory.mktemp("evaluate")
    fitted_model.save(d / "model")
    with open(d / "docs.jsonl", "w", encoding="utf-8") as f:
        for i, (t, lab) in enumerate(zip(ng_corpus.texts, ng_corpus.labels)):
            f.write(json.dumps({"id": f"d{i}", "text": t, "group": lab}) + "\n")
    (d / "labels.txt").write_text("\n".join(ng_corpus.labels) + "\n")
    (d / "short_labels.txt").write_text("a\nb\nc\n")
    (d / "not_a_model").mkdir()
    return d


def _cli(argv, capsys):
    from saetm.cli import main

    capsys.readouterr()
    try:
        rc = main([str(a) for a in argv])
    except SystemExit as e:  # argparse
        rc = e.code
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_cli_evaluate_table_json_and_file(evaluate_files, fitted_model, capsys):
    d = evaluate_files
    expected = fitted_model.evaluate()  # in memory the full texts are the reference: same numbers
    rc, out, err = _cli(["evaluate", d / "model", "--reference", d / "docs.jsonl", "-q"], capsys)
    assert rc == 0, err
    lines = out.strip().splitlines()
    assert lines[0].split()[:2] == ["measure", "value"] and len(lines) == 1 + len(expected)
    assert {line.split()[0] for line in lines[1:]} == set(expected)
    saved = json.loads((d / "model" / "evaluation.json").read_text())
    assert saved["measures"] == pytest.approx(expected) and saved["n_topics"] == fitted_model.n_topics
    assert saved["reference"].startswith("400 documents of") and saved["judge"] is None
    assert not [p for p in (d / "model").iterdir() if p.name.endswith(".tmp") or p.name.startswith(".saetm")]

    (d / "model" / "evaluation.json").unlink()
    rc, out, err = _cli(["evaluate", d / "model", "--reference", d / "docs.jsonl", "--labels", d / "labels.txt",
                         "--top-n", "5", "--json", "--no-write", "-q"], capsys)
    assert rc == 0, err
    printed = json.loads(out)
    assert printed["top_n"] == 5 and printed["measures"]["nmi"] == pytest.approx(expected["nmi"])
    assert printed["measures"]["npmi"] != pytest.approx(expected["npmi"])
    assert not (d / "model" / "evaluation.json").exists()


def test_cli_evaluate_with_a_judge_server(evaluate_files, fake_server, capsys):
    d = evaluate_files
    rc, out, err = _cli(["evaluate", d / "model", "--reference", d / "docs.jsonl", "--judge", fake_server,
                         "--judge-model", "tiny", "--json", "--no-write", "-q"], capsys)
    assert rc == 0, err
    m = json.loads(out)["measures"]
    assert m["llm_coherence"] == 77 and m["llm_coherence_unparsed"] == 0 and m["intruder_unparsed"] == 0
    assert {body["model"] for _, _, body in _FakeOpenAI.requests} == {"tiny"}


@pytest.mark.parametrize("args, message", [
    (["{d}/no-such-model"], "not a directory"),
    (["{d}/not_a_model"], "no complete saetm model"),
    (["{d}/model"], "cut to 1000 characters"),
    (["{d}/model", "--reference", "{d}/missing.jsonl"], "missing.jsonl does not exist"),
    (["{d}/model", "--reference", "{d}/docs.jsonl", "--labels", "{d}/short_labels.txt"], "got 3 labels for 400"),
    (["{d}/model", "--reference", "{d}/docs.jsonl", "--labels", "{d}/nope.txt"], "nope.txt does not exist"),
    (["{d}/model", "--label-field", "group"], "--label-field"),
    (["{d}/model", "--judge", "http://127.0.0.1:9"], "--judge-model"),
    (["{d}/model", "--judge", "localhost:9", "--judge-model", "x"], "http://"),
    (["{d}/model", "--top-n", "0"], "at least 1"),
])
def test_cli_evaluate_errors_are_one_line_with_exit_code_2(evaluate_files, capsys, args, message):
    d = evaluate_files
    rc, out, err = _cli(["evaluate", *[a.format(d=d) for a in args], "-q"], capsys)
    assert rc == 2 and "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("saetm: error:")]
    assert len(errors) == 1 and message in errors[0], err
    assert not (d / "model" / "evaluation.json").exists()
