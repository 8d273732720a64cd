"""The static encoder (issue 17, item 3): word-piece vectors distilled from the bundled
all-MiniLM-L6-v2, shipped in the package with an SAE trained on exactly those vectors."""

import hashlib
import time

import numpy as np
import pytest

from saetm.encoders.static import STATIC_ENCODER, StaticEncoder, static_dir
from saetm.io.persist import read_json
from saetm.encoders.embed import make_encoder
from saetm.sae.stage import SHIPPED_SAES, shipped_sae_dir
from saetm.sae.persist import load_sae


@pytest.fixture(scope="module")
def encoder():
    return StaticEncoder()


@pytest.fixture(scope="module")
def static_embeddings(ng_corpus, encoder):
    return encoder.encode(ng_corpus.texts)


def test_the_vectors_ship_small_and_are_the_ones_recorded():
    root = static_dir()
    assert root is not None, "src/saetm/assets/static-minilm is missing: the package must ship the static encoder"
    info = read_json(root / "static.json")
    from safetensors.numpy import load_file

    vectors = load_file(str(root / "vectors.safetensors"))["vectors"]
    assert vectors.dtype == np.float16 and vectors.shape == (info["n_pieces"], info["dim"]) == (29525, 256)
    # the SAE below was trained on exactly these vectors
    assert hashlib.sha256(vectors.tobytes()).hexdigest() == info["vectors_sha256"]
    assert sum(p.stat().st_size for p in root.iterdir()) < 20 * 2**20


def test_encodes_real_texts_deterministically(ng_corpus, encoder, static_embeddings):
    X = static_embeddings
    assert X.shape == (len(ng_corpus), 256) and X.dtype == np.float32
    assert np.allclose(np.linalg.norm(X, axis=1), 1, atol=1e-5)
    # a fresh encoder, and other batch boundaries, give the very same numbers
    again = StaticEncoder(batch_size=7).encode(ng_corpus.texts)
    assert np.array_equal(X, again)
    assert np.array_equal(encoder.encode(ng_corpus.texts[:3]), X[:3])
    # the vectors carry meaning: posts of one newsgroup are closer than posts of two
    labels = np.asarray(ng_corpus.labels)
    cos = X @ X.T
    same = labels[:, None] == labels[None, :]
    np.fill_diagonal(same, False)
    other = labels[:, None] != labels[None, :]
    assert cos[same].mean() > cos[other].mean() + 0.05


def test_text_without_a_known_word_piece_gets_a_zero_row(encoder):
    X = encoder.encode(["", "hockey season", "\u200b"])
    assert not X[0].any() and not X[2].any() and X[1].any()


def test_long_texts_cost_no_more_than_their_first_512_word_pieces(encoder):
    long = "the goalie saved the penalty shot " * 5000
    assert np.array_equal(encoder.encode([long]), encoder.encode([long[: encoder.max_chars]]))


def test_static_is_picked_by_name():
    assert isinstance(make_encoder("static"), StaticEncoder)
    assert isinstance(make_encoder(STATIC_ENCODER), StaticEncoder)  # the name saved models record
    assert make_encoder("static").name == STATIC_ENCODER


def test_shipped_static_sae_matches_the_encoder(encoder, static_embeddings):
    from saetm.encoders.text import DEFAULT_ENCODER
    from saetm.sae.train import evaluate_sae

    assert set(SHIPPED_SAES) == {DEFAULT_ENCODER, STATIC_ENCODER}
    root = shipped_sae_dir(STATIC_ENCODER)
    assert root is not None and root.name == "sae-static", "src/saetm/assets/sae-static is missing"
    assert shipped_sae_dir() == shipped_sae_dir(DEFAULT_ENCODER) != root
    info = read_json(root / "sae.json")
    config = info["config"]
    assert config["encoder_name"] == STATIC_ENCODER and info["dtype"] == "float16"
    assert config["d_in"] == encoder.dim == 256
    assert config["n_atoms"] == 16 * encoder.dim and config["k"] == 32
    assert (root / "sae.safetensors").stat().st_size <= 25 * 2**20
    # trained on the static vectors that ship (a re-distilled, different encoder would not match)
    vectors_sha = read_json(static_dir() / "static.json")["vectors_sha256"]
    assert info["meta"]["shipped"]["encoder_vectors_sha256"] == vectors_sha
    # and pooled as the encoder pools: word pieces weighted by the collection's own IDF
    assert info["meta"]["shipped"]["encoder_pooling"] == "idf"
    # 20 Newsgroups is not in its training collection; it still reads it
    m = evaluate_sae(load_sae(root), static_embeddings)
    assert m["fve"] > 0.5 and 10 < m["l0"] < 80, m


def test_static_fit_uses_the_shipped_static_sae(ng_corpus, tmp_path, caplog):
    import logging

    from saetm.model import SAETM

    t = time.perf_counter()
    with caplog.at_level(logging.INFO, logger="saetm"):
        model = SAETM(n_topics=8, encoder="static", min_df=3, verbose=False, cache=False).fit(
            ng_corpus.texts, labels=ng_corpus.labels)
    seconds = time.perf_counter() - t
    assert model.embedding_name_ == STATIC_ENCODER
    assert model.fit_report_.sae["source"] == "default"
    assert "shipped with saetm" in caplog.text
    shipped = load_sae(shipped_sae_dir(STATIC_ENCODER))
    assert np.array_equal(model.sae_.W_dec.detach().numpy(), shipped.W_dec.detach().numpy())
    scores = model.evaluate()
    assert scores["nmi"] > 0.2, scores  # 8 topics over 20 newsgroups, from 400 posts
    assert seconds < 300, seconds  # no transformer to run; generous for a shared CI machine

    # a saved model comes back with the static encoder and reads new texts the same way
    model.save(tmp_path / "m")
    loaded = SAETM.load(tmp_path / "m")
    assert isinstance(loaded.encoder_, StaticEncoder)
    new = ng_corpus.texts[:20]
    assert np.allclose(loaded.transform(new).toarray(), model.transform(new).toarray())


def test_cli_fit_with_the_static_encoder(ng_corpus, tmp_path):
    import json

    from saetm.cli import main
    from saetm.model import SAETM

    docs = tmp_path / "docs.jsonl"
    docs.write_text("".join(json.dumps({"body": t, "group": g}) + "\n"
                            for t, g in zip(ng_corpus.texts, ng_corpus.labels)))
    out = tmp_path / "model"
    rc = main(["fit", str(docs), "--out", str(out), "--text-field", "body", "--label-field", "group",
               "--encoder", "static", "--topics", "6", "--min-df", "3", "--no-cache", "-q"])
    assert rc == 0
    model = SAETM.load(out)
    assert model.embedding_name_ == STATIC_ENCODER and isinstance(model.encoder_, StaticEncoder)
    assert model.sae_.config.d_in == 256 and model.fit_info_["sae"]["source"] == "default"


def test_word_pieces_are_weighted_by_the_fitted_collections_idf(ng_corpus):
    from saetm.encoders.static import idf_weights

    texts = ng_corpus.texts
    enc = StaticEncoder()
    X = enc.fit_encode(texts)
    tokenizer, vectors = enc._load()
    # the table: ln((1 + n) / (1 + df)) + 1 over the documents holding each piece
    ids = [set(tokenizer.encode(t[: enc.max_chars], add_special_tokens=False).ids[: enc.max_length]) for t in texts]
    the, hockey = tokenizer.token_to_id("the"), tokenizer.token_to_id("hockey")
    for piece in (the, hockey):
        df = sum(piece in i for i in ids)
        assert enc.idf[piece] == pytest.approx(np.log((1 + len(texts)) / (1 + df)) + 1, rel=1e-6)
    assert enc.idf[hockey] > 2 * enc.idf[the]  # a topical piece outweighs a function word
    assert enc.idf.max() == pytest.approx(idf_weights(np.zeros(1), len(texts))[0])  # pieces never seen
    # one post by hand: the unit-length IDF-weighted sum of its pieces' vectors
    piece_ids = [i for i in tokenizer.encode(texts[0][: enc.max_chars], add_special_tokens=False).ids[: enc.max_length]
                 if i != enc._unk]
    s = (vectors[piece_ids] * enc.idf[piece_ids, None]).sum(axis=0)
    assert np.allclose(X[0], s / np.linalg.norm(s), atol=1e-5)
    # all weights 1 (models saved before the table) is the plain mean of the pieces, as model2vec encodes
    m = vectors[piece_ids].mean(axis=0)
    assert np.allclose(StaticEncoder(idf=np.ones(len(vectors))).encode(texts[:1])[0], m / np.linalg.norm(m), atol=1e-5)
    # a fitted encoder keeps its table: one post alone gets the embedding it got among all of them
    for i in (0, 7, len(texts) - 1):
        assert np.array_equal(enc.encode([texts[i]])[0], X[i])
    # an encoder not fitted yet fits on what it encodes first; fit_encode and fit + encode agree
    assert np.array_equal(StaticEncoder().encode(texts), X)
    assert np.array_equal(StaticEncoder().fit(texts).idf, enc.idf)


def test_a_wrong_idf_table_is_refused():
    from saetm.errors import SaetmError

    with pytest.raises(SaetmError, match="IDF table"):
        StaticEncoder(idf=np.ones(10)).encode(["hockey season"])
    with pytest.raises(SaetmError, match="IDF table"):
        StaticEncoder(idf=np.full(29525, np.nan)).encode(["hockey season"])


def test_fitted_idf_round_trips_and_transform_reproduces_the_fit(ng_corpus, tmp_path):
    from safetensors.numpy import load_file, save_file

    from saetm.model import SAETM

    texts = ng_corpus.texts
    model = SAETM(n_topics=8, encoder="static", min_df=3, verbose=False, cache=False).fit(texts)
    idf = model.encoder_.idf
    assert idf is not None and np.array_equal(idf, StaticEncoder().fit(texts).idf)  # the fitted posts' own table
    model.save(tmp_path / "m")
    loaded = SAETM.load(tmp_path / "m")
    assert np.array_equal(loaded.encoder_.idf, idf)
    # a fitted post transformed again: its fitted embedding, so its fitted topic weights
    X = StaticEncoder(idf=idf).encode(texts[:20])
    assert np.allclose(X.astype(np.float16), model.doc_embeddings_[:20], atol=1e-3)
    assert np.allclose(loaded.transform(texts[:20]).toarray(), model.doc_topics_[:20].toarray(), atol=1e-4)
    # fitting with the embeddings given still gives transform the fitted posts' table
    given = SAETM(n_topics=8, encoder="static", min_df=3, verbose=False, cache=False).fit(
        texts, StaticEncoder().encode(texts))
    assert np.array_equal(given.encoder_.idf, idf)
    # files saved before the table: all weights 1, the unweighted mean the encoder used then
    state = tmp_path / "m" / "state.safetensors"
    from saetm.io.directory import FIT_ID
    from safetensors import safe_open

    with safe_open(str(state), "np") as f:
        meta = f.metadata()
    arrays = {k: v for k, v in load_file(str(state)).items() if k != "encoder.idf"}
    save_file(arrays, str(state), metadata=meta)
    old = SAETM.load(tmp_path / "m")
    assert np.array_equal(old.encoder_.idf, np.ones_like(idf))
    assert FIT_ID in meta
