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
    m = SAETM(n_topics=5, sae="train", n_atoms=256, k=8, sae_steps=300, min_df=2, seed=0, cache=False, verbose=False)
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
    assert json.loads((out / "sae" / "sae.json").read_text())["config"]["d_in"] == clipart_embeddings.shape[1]
    assert sp.load_npz(out / "doc_topics.npz").shape == (N_IMAGES, 4)
