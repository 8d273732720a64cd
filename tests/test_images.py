"""Images: reading image collections, encoding images, and topics of real clip art.

Runs on a real slice of Debian's Open Clip Art Library
(``apt-get install openclipart-png openclipart-svg``); skipped when it is absent.
"""

import json
import re
import shutil

import numpy as np
import pytest

from saetm.encoders.cache import EmbeddingCache
from saetm.encoders.image import ImageEncoder, encode_collection, encode_images, encode_images_cached
from saetm.errors import SaetmError
from saetm.io.images import OPENCLIPART_ROOT, load_openclipart, read_image_collection
from saetm.io.readers import read_embeddings

pytestmark = pytest.mark.skipif(
    not (OPENCLIPART_ROOT / "png").is_dir() or not (OPENCLIPART_ROOT / "svg").is_dir(),
    reason="Open Clip Art is not installed: apt-get install openclipart-png openclipart-svg",
)

N_IMAGES = 60
TOKENS = re.compile(r"(?u)\b[^\W\d_]{2,}\b")  # the vocabulary's token pattern


@pytest.fixture(scope="module")
def clipart():
    return load_openclipart(N_IMAGES, seed=1)


@pytest.fixture(scope="module")
def encoder():
    return ImageEncoder()


@pytest.fixture(scope="module")
def clipart_embeddings(clipart, encoder):
    """Real EfficientNet-Lite0 embeddings of the slice (cached on disk between runs)."""
    X, index, failed = encode_images(encoder, clipart.extra["images"], show_progress=False)
    assert failed == [] and index.tolist() == list(range(N_IMAGES))
    return X


def _copy_slice(clipart, root, k):
    """The first ``k`` images of the slice in ``root/<category>/<name>.png``."""
    paths = []
    for i in range(k):
        src = clipart.extra["images"][i]
        dst = root / clipart.labels[i] / f"{i:02d}_{src.rsplit('/', 1)[-1]}"
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, dst)
        paths.append(dst)
    return paths


# ------------------------------------------------------------------------------ reading


def test_openclipart_has_titles_keywords_and_categories(clipart):
    assert len(clipart) == N_IMAGES == len(clipart.extra["images"]) == len(clipart.labels)
    assert load_openclipart(N_IMAGES, seed=1).ids == clipart.ids  # seeded
    assert all(p.endswith(".png") for p in clipart.extra["images"])
    assert {lab for lab in clipart.labels} <= {
        "animals", "buildings", "buttons", "computer", "containers", "decorations", "education", "electronics",
        "food", "geography", "logos", "office", "people", "plants", "recreation", "science", "shapes",
        "signs_and_symbols", "special", "tools", "transportation", "unsorted"}
    for text, title, words in zip(clipart.texts, clipart.extra["titles"], clipart.extra["keywords"]):
        assert text == ". ".join(x for x in (title, ", ".join(words)) if x)
        assert all("_" not in w and w.strip() == w and w for w in words)
    assert sum(bool(k) for k in clipart.extra["keywords"]) >= 0.9 * N_IMAGES
    assert "Open Clip Art Library" not in " ".join(clipart.texts)  # the publisher's title is not the image's


def test_folder_with_sidecar_words_and_folder_labels(clipart, tmp_path):
    paths = _copy_slice(clipart, tmp_path, 12)
    for i, p in enumerate(paths[:10]):
        if i % 2:
            p.with_suffix(".txt").write_text(clipart.texts[i] + "\n")
        else:
            record = {"title": clipart.extra["titles"][i], "keywords": clipart.extra["keywords"][i], "year": 2004 + i}
            p.with_suffix(".json").write_text(json.dumps(record))
    (tmp_path / ".hidden.png").write_bytes(b"not listed")

    c = read_image_collection(tmp_path, label_field="folder")
    order = np.argsort([p.relative_to(tmp_path).as_posix() for p in paths])
    assert c.extra["images"] == [str(paths[i]) for i in order]
    assert c.ids == [paths[i].relative_to(tmp_path).as_posix() for i in order]
    assert c.labels == [clipart.labels[i] for i in order]
    assert c.texts == [clipart.texts[i] if i < 10 else "" for i in order]  # .txt verbatim, .json joined alike
    assert c.extra["n_without_words"] == 2

    dated = read_image_collection(tmp_path, date_field="year", text_field="keywords")
    by_name = dict(zip(dated.ids, zip(dated.texts, dated.dates)))
    first = paths[0].relative_to(tmp_path).as_posix()
    assert by_name[first] == (", ".join(clipart.extra["keywords"][0]), 2004)


def test_manifests_csv_and_jsonl_with_tag_lists(clipart, tmp_path):
    paths = _copy_slice(clipart, tmp_path / "img", 8)
    rows = [{"file": f"img/{p.relative_to(tmp_path / 'img').as_posix()}", "title": clipart.extra["titles"][i],
             "tags": clipart.extra["keywords"][i], "category": clipart.labels[i]} for i, p in enumerate(paths)]
    with open(tmp_path / "images.jsonl", "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    c = read_image_collection(tmp_path / "images.jsonl", label_field="category")
    assert c.extra["image_field"] == "file" and c.extra["text_field"] == ["title", "tags"]
    assert c.extra["images"] == [str(p) for p in paths]  # relative to the manifest's folder
    assert c.texts == clipart.texts[:8] and c.labels == clipart.labels[:8]

    import pandas as pd

    df = pd.DataFrame({"path": [r["file"] for r in rows], "caption": [r["title"] for r in rows],
                       "keywords": [", ".join(r["tags"]) for r in rows]})
    df.loc[3, "path"] = ""  # a row without an image is dropped, its number kept
    df.to_csv(tmp_path / "images.csv", index=False)
    c = read_image_collection(tmp_path / "images.csv", text_field="keywords")
    assert c.extra["skipped_rows"] == [3] and len(c) == 7 and c.ids[3] == "4"
    assert c.texts[0] == ", ".join(clipart.extra["keywords"][0])

    # a Hugging Face style metadata.csv inside an image folder
    df.rename(columns={"path": "file_name"}).to_csv(tmp_path / "metadata.csv", index=False)
    assert read_image_collection(tmp_path, text_field="caption,keywords").extra["images"][0] == str(paths[0])

    with pytest.raises(SaetmError, match="--image-field"):
        pd.DataFrame({"picture": ["a.png"], "caption": ["x"]}).to_csv(tmp_path / "bad.csv", index=False)
        read_image_collection(tmp_path / "bad.csv")
    with pytest.raises(SaetmError, match="no field 'nope'"):
        read_image_collection(tmp_path / "images.csv", text_field="nope")


# ------------------------------------------------------------------------------ encoding


def test_corrupt_and_missing_images_are_skipped_and_listed(clipart, encoder, clipart_embeddings, tmp_path):
    bad = tmp_path / "corrupt.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    svg = tmp_path / "drawing.png"
    svg.write_bytes(b"<svg xmlns='http://www.w3.org/2000/svg'/>")
    images = [clipart.extra["images"][0], str(bad), clipart.extra["images"][1], str(tmp_path / "gone.png"), str(svg)]
    cache = EmbeddingCache(tmp_path / "cache")
    for _ in range(2):  # the second call is a cache hit and must report the same
        X, index, failed = encode_images(encoder, images, cache=cache, show_progress=False)
        assert index.tolist() == [0, 2] and X.shape == (2, 1280) and X.dtype == np.float32
        np.testing.assert_allclose(X, clipart_embeddings[:2], rtol=1e-4, atol=1e-4)
        assert [p for p, _ in failed] == [str(bad), str(tmp_path / "gone.png"), str(svg)]
        assert "not a readable image" in failed[0][1] and failed[1][1] == "file not found" and "SVG" in failed[2][1]
    # a whole collection: the unreadable images leave the corpus, everything stays aligned
    from saetm.io.datasets import Corpus

    collection = Corpus(texts=["a", "b", "c", "d", "e"], labels=list("LMNOP"), ids=list("vwxyz"),
                        extra={"images": images, "keywords": [[k] for k in "abcde"], "source": "test"})
    kept, X2, failed2 = encode_collection(collection, encoder, cache=cache, show_progress=False)
    assert (kept.texts, kept.labels, kept.ids, kept.extra["keywords"]) == (["a", "c"], ["L", "N"], ["v", "x"], [["a"], ["c"]])
    assert kept.extra["images"] == [images[0], images[2]] and kept.extra["failed_images"] == failed2 == failed
    np.testing.assert_array_equal(X2, X)
    with pytest.raises(SaetmError, match="3 of 5 images could not be read"):
        encode_images_cached(encoder, images, cache=cache, show_progress=False)
    with pytest.raises(SaetmError, match="none of the 1 images"):
        encode_images(encoder, [str(bad)], cache=False, show_progress=False)


def test_decoding_puts_transparency_on_white_and_shrinks_large_images(clipart, tmp_path):
    from PIL import Image

    from saetm.io.images import MAX_SIDE, load_rgb

    Image.new("RGBA", (3000, 1000), (255, 0, 0, 0)).save(tmp_path / "clear.png")  # red, fully transparent
    im = load_rgb(tmp_path / "clear.png")
    assert im.mode == "RGB" and im.size == (MAX_SIDE, round(1000 * MAX_SIDE / 3000))
    assert np.asarray(im).min() == 255  # transparent red is white, not red or black
    Image.new("P", (10, 10), 3).save(tmp_path / "palette.gif", transparency=3)
    assert np.asarray(load_rgb((tmp_path / "palette.gif").read_bytes())).min() == 255  # bytes work too
    assert load_rgb({"bytes": None, "path": clipart.extra["images"][0]}).mode == "RGB"  # Parquet image records


def test_encoder_choice_default_callable_and_model_folders(clipart, encoder, clipart_embeddings, tmp_path):
    from PIL import Image

    images = clipart.extra["images"][:4]
    assert encoder.name == "efficientnet-lite0" and encoder.dim == 1280
    np.testing.assert_allclose(encoder.encode(images, show_progress=False), clipart_embeddings[:4], rtol=1e-4, atol=1e-4)
    assert np.linalg.matrix_rank(clipart_embeddings) > 40  # real, varied features

    seen = []

    def mean_colour(ims):
        seen.extend(ims)
        return np.stack([np.asarray(im, dtype=np.float32).mean((0, 1)) for im in ims])

    custom = ImageEncoder(mean_colour, batch_size=3)
    assert custom.name == "test_encoder_choice_default_callable_and_model_folders.<locals>.mean_colour"
    cache = EmbeddingCache(tmp_path / "cache")
    X = encode_images_cached(custom, images, cache=cache, show_progress=False)
    assert X.shape == (4, 3) and len(seen) == 4
    assert all(isinstance(im, Image.Image) and im.mode == "RGB" for im in seen)
    encode_images_cached(custom, images, cache=cache, show_progress=False)
    assert len(seen) == 4  # cache hit: not encoded again
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 2  # embeddings + readable mask

    with pytest.raises(SaetmError, match="neither 'default' nor an existing model folder"):
        ImageEncoder("openai/clip-vit-base-patch32").encode(images[:1])
    (tmp_path / "empty").mkdir()
    with pytest.raises(SaetmError, match="no config.json"):
        ImageEncoder(tmp_path / "empty").encode(images[:1])
    anonymous = ImageEncoder(lambda ims: np.zeros(len(ims)))
    assert not anonymous.cacheable and custom.cacheable  # two lambdas must never share cache entries
    with pytest.raises(SaetmError, match=r"returned shape \(1,\) for 1 images"):
        anonymous.encode(images[:1])


def test_local_clip_folder(clipart, tmp_path):
    """A (tiny, randomly initialised) CLIP saved with save_pretrained loads offline."""
    transformers = pytest.importorskip("transformers")
    config = transformers.CLIPConfig(
        text_config=dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2),
        vision_config=dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                           image_size=32, patch_size=8),
        projection_dim=8,
    )
    transformers.CLIPModel(config).save_pretrained(tmp_path / "clip")
    transformers.CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(tmp_path / "clip")
    enc = ImageEncoder(tmp_path / "clip")
    X = enc.encode(clipart.extra["images"][:3], show_progress=False)
    assert X.shape == (3, 8) and enc.name == str(tmp_path / "clip")


# ------------------------------------------------------------------------------ topics


def _keyword_overlap(doc_topics, top_words, keywords, assign=None):
    """Mean fraction of an image's keyword tokens among its main topic's top words."""
    D = doc_topics.toarray()
    main = D.argmax(1) if assign is None else assign
    rows = [i for i in range(len(keywords)) if D[i].sum() > 0 and keywords[i]]
    return np.mean([len(keywords[i] & top_words[main[i]]) / len(keywords[i]) for i in rows]), rows, main


def test_topics_of_precomputed_image_embeddings_match_their_keywords(clipart, clipart_embeddings, tmp_path):
    from saetm.model import SAETM

    np.save(tmp_path / "clipart.npy", clipart_embeddings)
    X = read_embeddings(tmp_path / "clipart.npy", n_rows=len(clipart))
    m = SAETM(n_topics=5, sae={"n_atoms": 256, "k": 8, "steps": 300}, min_df=2, seed=0, cache=False, verbose=False)
    m.fit(clipart.texts, embeddings=X, labels=clipart.labels)
    assert m.doc_topics_.shape == (N_IMAGES, 5)

    keywords = [set(TOKENS.findall(" ".join(k).lower())) for k in clipart.extra["keywords"]]
    top = [{w for w, _ in m.get_topic(t, 25)} for t in range(m.n_topics)]
    real, rows, main = _keyword_overlap(m.doc_topics_, top, keywords)
    rng = np.random.default_rng(0)
    chance = np.mean([
        _keyword_overlap(m.doc_topics_, top, keywords, dict(zip(rows, rng.permutation(main[rows]))))[0]
        for _ in range(50)
    ])
    assert len(rows) >= 0.8 * N_IMAGES
    assert real > 1.2 * chance, (real, chance)


# ------------------------------------------------------------------------------ CLI
def test_cli_fits_an_image_manifest_and_records_the_image_encoder(clipart, clipart_embeddings, tmp_path):
    import pandas as pd
    import scipy.sparse as sp

    from saetm.cli import main

    manifest = tmp_path / "m.csv"
    pd.DataFrame({"image": clipart.extra["images"], "text": clipart.texts,
                  "category": clipart.labels}).to_csv(manifest, index=False)
    out = tmp_path / "model"
    rc = main(["fit", str(manifest), "--image-field", "image", "--text-field", "text", "--label-field", "category",
               "--topics", "4", "--min-df", "2", "--n-atoms", "256", "--k", "8", "--sae-steps", "100",
               "--out", str(out), "-q"])
    assert rc == 0
    info = json.loads((out / "model.json").read_text())
    assert info["embedding_name"] == "image:efficientnet-lite0"
    from saetm.model import SAETM

    assert SAETM.load(out).doc_word_weight_ == 0.0  # an image's words only name the atoms
    assert json.loads((out / "sae" / "sae.json").read_text())["config"]["d_in"] == clipart_embeddings.shape[1]
    assert sp.load_npz(out / "doc_topics.npz").shape == (N_IMAGES, 4)
    # the image paths are kept, so the report shows thumbnails
    assert pd.read_parquet(out / "documents.parquet")["image"].tolist() == clipart.extra["images"]
    assert main(["report", str(out), "-q"]) == 0
    page = (out / "report.html").read_text(encoding="utf-8")
    assert len(_galleries(page)) == 4 and 'id="images"' in page


# ------------------------------------------------------------------------------ thumbnails in the report


@pytest.fixture(scope="module")
def image_model(clipart, clipart_embeddings):
    """A small model of the real slice that keeps each image's path."""
    from saetm.model import SAETM

    m = SAETM(n_topics=5, sae={"n_atoms": 256, "k": 8, "steps": 300}, min_df=2, seed=0, cache=False, verbose=False)
    return m.fit(clipart.texts, clipart_embeddings, labels=clipart.labels, images=clipart.extra["images"])


_ROW = re.compile(r'<div class="row"><div class="label">(.*?)</div><div class="thumbs">(.*?)</div></div>', re.S)
_IMG = re.compile(r'<img src="data:image/jpeg;base64,([A-Za-z0-9+/=]+)" width="(\d+)" height="(\d+)" alt="([^"]*)"')


def _galleries(page):
    """[(topic label, [(PIL image, caption), ...]), ...] decoded from a report page."""
    import base64
    import io

    from PIL import Image

    from html import unescape

    return [(unescape(label), [(Image.open(io.BytesIO(base64.b64decode(b64))), unescape(alt))
                               for b64, _, _, alt in _IMG.findall(imgs)])
            for label, imgs in _ROW.findall(page)]


def test_representative_images_are_each_topics_top_documents(image_model, clipart):
    assert image_model.doc_word_weight_ == 0.0 and image_model.word_centroids_ is None  # images: no word view
    paths = clipart.extra["images"]
    W = image_model.doc_topics_.toarray()
    every = image_model.get_representative_images(n=6)
    assert sorted(every) == list(range(image_model.n_topics))
    for t in range(image_model.n_topics):
        best = image_model.get_representative_images(t, n=6)
        assert best == every[t] and 0 < len(best) <= 6 and len(set(best)) == len(best)
        rows = [paths.index(p) for p in best]
        weights = W[rows, t]
        assert (weights > 0).all() and np.all(np.diff(np.round(weights, 6)) <= 0)  # best first
        assert weights[0] == pytest.approx(W[:, t].max(), abs=1e-6)
    with pytest.raises(SaetmError, match="does not exist"):
        image_model.get_representative_images(image_model.n_topics)
    assert image_model.get_document_info()["image"].tolist() == paths


def test_report_of_an_image_model_shows_thumbnails_of_each_topics_top_images(image_model, clipart, tmp_path):
    from PIL import Image

    page = image_model.report(tmp_path / "clipart.html").read_text(encoding="utf-8")
    assert 'href="#images"' in page and "Topics of 60 images" in page
    galleries = _galleries(page)
    assert [label for label, _ in galleries] == image_model.topic_labels()
    titles = dict(zip(clipart.extra["images"], clipart.texts))
    for t, (_, thumbs) in enumerate(galleries):
        expected = image_model.get_representative_images(t, n=6)
        assert len(thumbs) == len(expected) > 0
        for (im, caption), path in zip(thumbs, expected):  # in rank order, each named by its file and words
            assert im.format == "JPEG" and max(im.size) <= 96 and min(im.size) >= 8
            name, words = path.rsplit("/", 1)[-1], " ".join(titles[path].split())
            assert caption == name if not words else caption.startswith(f"{name}: {words[:30]}")
    # the first thumbnail of topic 0 is its top image, shrunk: compare pixels with the original
    im, _ = galleries[0][1][0]
    original = Image.open(image_model.get_representative_images(0, n=1)[0]).convert("RGBA")
    white = Image.alpha_composite(Image.new("RGBA", original.size, "white"), original).convert("RGB")
    white.thumbnail(im.size, Image.LANCZOS)
    diff = np.abs(np.asarray(white.resize(im.size), np.float32) - np.asarray(im.convert("RGB"), np.float32))
    assert diff.mean() < 12, diff.mean()
    assert len(page.encode()) < 6_500_000  # thumbnails add a few KB each


def test_report_skips_and_counts_images_that_are_gone(image_model, tmp_path, caplog):
    import copy
    import logging

    from saetm.report.build import IMAGE_CANDIDATES, IMAGES_PER_TOPIC

    paths = image_model.documents_["image"]
    moved = []
    for i, p in enumerate(paths):  # a copy of the collection elsewhere, whose files we then break
        dst = tmp_path / "images" / f"{i:02d}.png"
        dst.parent.mkdir(exist_ok=True)
        shutil.copy(p, dst)
        moved.append(str(dst))
    m = copy.copy(image_model)
    m.documents_ = {**image_model.documents_, "image": moved}
    top = m.get_representative_images(0, n=6)
    for p in top[:2]:
        (tmp_path / "images" / p.rsplit("/", 1)[-1]).unlink()
    (tmp_path / "images" / top[2].rsplit("/", 1)[-1]).write_bytes(b"not a png")

    with caplog.at_level(logging.WARNING, logger="saetm"):
        page = m.report(tmp_path / "r.html").read_text(encoding="utf-8")
    assert "3 of the topics&#x27; top images could not be read" in page and "file not found" in page
    assert any("leaves out 3 images that cannot be read" in r.getMessage() for r in caplog.records)
    galleries = _galleries(page)
    shown = [caption.split(":")[0] for _, caption in galleries[0][1]]
    assert not {p.rsplit("/", 1)[-1] for p in top[:3]} & set(shown)
    assert shown[:3] == [p.rsplit("/", 1)[-1] for p in top[3:6]]  # the next best fill in

    shutil.rmtree(tmp_path / "images")  # nothing left: the report is still written, counting every image tried
    page = m.report(tmp_path / "r.html").read_text(encoding="utf-8")
    assert "None of the topics&#x27; images could be read" in page and "data:image/jpeg" not in page
    tried = set().union(*m.get_representative_images(n=IMAGE_CANDIDATES * IMAGES_PER_TOPIC).values())
    assert f"{len(tried)} of the topics&#x27; top images could not be read" in page


def test_saved_image_model_keeps_its_image_paths(image_model, tmp_path):
    import pandas as pd

    from saetm.model import SAETM

    image_model.save(tmp_path / "m")
    assert pd.read_parquet(tmp_path / "m" / "documents.parquet")["image"].tolist() == image_model.documents_["image"]
    loaded = SAETM.load(tmp_path / "m")
    assert loaded.documents_["image"] == image_model.documents_["image"]
    assert loaded.get_representative_images() == image_model.get_representative_images()
    page = loaded.report(tmp_path / "m" / "report.html").read_text(encoding="utf-8")
    assert len(_galleries(page)) == loaded.n_topics and page.count("data:image/jpeg") >= loaded.n_topics


def test_model_saved_without_image_paths_loads_and_reports_without_thumbnails(image_model, tmp_path):
    """saetm before image paths wrote documents.parquet without the ``image`` column; all else is equal."""
    import pandas as pd

    from saetm.model import SAETM

    image_model.save(tmp_path / "old")
    docs = tmp_path / "old" / "documents.parquet"
    pd.read_parquet(docs).drop(columns="image").to_parquet(docs, index=False)
    old = SAETM.load(tmp_path / "old")
    assert old.documents_["image"] is None and old.documents_["label"] == image_model.documents_["label"]
    with pytest.raises(SaetmError, match="kept no image paths"):
        old.get_representative_images(0)
    assert "image" not in old.get_document_info()
    page = old.report(tmp_path / "old.html").read_text(encoding="utf-8")
    assert "data:image/jpeg" not in page and 'id="images"' not in page and "Topics of 60 documents" in page
    np.testing.assert_array_equal(old.doc_topics_.toarray(), image_model.doc_topics_.toarray())
