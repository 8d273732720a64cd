"""Inputs made to exhaust time or memory: special files given as images, timestamps
given as dates, images that cannot be read, huge topic labels.

Each one must end quickly with a one-line message, or be skipped with a warning, and
never hang or build something the size of the attacker's choosing.
"""

import contextlib
import csv
import json
import os
import shutil
import signal

import numpy as np
import pytest

from saetm.errors import SaetmError
from saetm.io.images import MAX_IMAGE_BYTES, OPENCLIPART_ROOT, UnreadableImage, image_fingerprint, load_rgb
from saetm.model import MAX_LABEL_CHARS, SAETM

from _reliability import assert_one_line_error, run_main, run_saetm

needs_clipart = pytest.mark.skipif(not (OPENCLIPART_ROOT / "png").is_dir(),
                                   reason="Open Clip Art is not installed: apt-get install openclipart-png")


@contextlib.contextmanager
def _deadline(seconds):
    """Fail instead of hanging the suite when a call blocks (e.g. on a named pipe)."""
    def expired(*_):
        raise TimeoutError(f"still running after {seconds} s")
    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


# ------------------------------------------------------------------------------ images: special and unreadable files


def test_special_files_are_never_read_as_images(tmp_path):
    from saetm.report.thumbnails import thumbnail

    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    big = tmp_path / "huge.png"
    with open(big, "wb") as f:
        f.truncate(MAX_IMAGE_BYTES + 1)  # sparse: no disk used
    with _deadline(30):
        for path, why in (("/dev/zero", "not a regular file"), (fifo, "not a regular file"),
                          (tmp_path, "not a regular file"), (big, "larger than 64 MB")):
            for read in (load_rgb, thumbnail):
                with pytest.raises(UnreadableImage, match=why):
                    read(str(path))
            assert image_fingerprint(str(path)) == "unreadable"


N_CLIPART = 24
SKIPPED = {3: "broken", 9: "/dev/zero", 15: "fifo", 20: "blank"}  # manifest row -> what is there


@pytest.fixture(scope="module")
def image_fit(tmp_path_factory):
    """`saetm fit` (a real process, so a hang fails the test) on a manifest of real clip art
    with a corrupt file, /dev/zero, a named pipe and an empty image cell among its rows."""
    from saetm.io.images import load_openclipart

    root = tmp_path_factory.mktemp("images")
    clipart = load_openclipart(N_CLIPART, seed=3)
    (root / "images").mkdir()
    (root / "images" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    os.mkfifo(root / "images" / "pipe.png")
    special = {"broken": "images/broken.png", "/dev/zero": "/dev/zero", "fifo": "images/pipe.png", "blank": ""}
    rows, it = [], iter(range(N_CLIPART))
    for r in range(N_CLIPART + len(SKIPPED)):
        if r in SKIPPED:
            image, words = special[SKIPPED[r]], "red apple fruit"
        else:
            i = next(it)
            image = f"images/{i:02d}.png"
            shutil.copy(clipart.extra["images"][i], root / image)
            words = clipart.texts[i]
        rows.append([f"img{r}", image, words])
    with open(root / "m.csv", "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([["id", "image", "title"], *rows])
    out = root / "model"
    run = run_saetm(["fit", root / "m.csv", "--image-field", "image", "--id-field", "id", "--out", out,
                     "--n-atoms", "256", "--k", "8", "--sae-steps", "50", "--min-df", "2", "--topics", "3", "-q"],
                    cwd=root, timeout=900)
    assert run.returncode == 0, run.stderr
    return root, out, rows, run.stderr


@needs_clipart
def test_fit_skips_dev_zero_and_named_pipes_as_unreadable_images(image_fit):
    _, _, _, err = image_fit
    assert "skipped 3 unreadable images of" in err and "out of memory" not in err


@needs_clipart
def test_skipped_images_keep_their_rows_without_a_topic(image_fit):
    import pandas as pd
    import scipy.sparse as sp

    _, out, rows, _ = image_fit
    W = sp.load_npz(out / "doc_topics.npz").tocsr()
    assert W.shape == (len(rows), 3)  # one row per manifest row
    n_topics = np.diff(W.indptr)
    assert all(n_topics[r] == 0 for r in SKIPPED)
    assert all(n_topics[r] > 0 for r in range(len(rows)) if r not in SKIPPED)
    docs = pd.read_parquet(out / "documents.parquet")
    assert [docs["id"][r] for r in SKIPPED] == ["img3", "img9", "img15", "20"]  # a row without an image has no id
    assert docs["image"].iloc[list(SKIPPED)].isna().all()
    assert docs["image"][0].endswith("images/00.png")
    m = SAETM.load(out)
    info = m.get_document_info()
    assert (info["topic"].to_numpy()[list(SKIPPED)] == -1).all()


def test_embeddings_for_some_rows_leave_the_others_without_a_topic(ng_corpus, ng_embeddings):
    from _reliability import N_DOCS, TINY

    texts = list(ng_corpus.texts[:N_DOCS])
    missing = [5, 40, 41, 119]  # rows whose embedding could not be made (unreadable images)
    rows = [i for i in range(N_DOCS) if i not in missing]
    m = SAETM(n_topics=4, **TINY).fit(texts, ng_embeddings[rows], embedding_rows=rows)
    n_topics = np.diff(m.doc_topics_.indptr)
    assert m.doc_topics_.shape[0] == N_DOCS and (n_topics[missing] == 0).all() and (n_topics[rows] > 0).all()
    for bad, why in (([0, 0] + rows[2:], "repeats"), ([*rows[:-1], N_DOCS], "from 0 to"), (rows[:-1], "rows")):
        with pytest.raises(SaetmError, match=why):
            SAETM(n_topics=4, **TINY).fit(texts, ng_embeddings[rows], embedding_rows=bad)


@needs_clipart
def test_report_does_not_hang_on_images_that_became_named_pipes(image_fit, tmp_path):
    root, out, _, _ = image_fit
    model = shutil.copytree(out, tmp_path / "model")
    images = shutil.copytree(root / "images", tmp_path / "images", ignore=shutil.ignore_patterns("pipe.png"))
    for p in images.glob("*.png"):
        p.unlink()
        os.mkfifo(p)
    import pandas as pd

    docs = pd.read_parquet(model / "documents.parquet")  # the model's images are now the pipes
    docs["image"] = [None if pd.isna(p) else str(images / os.path.basename(p)) for p in docs["image"]]
    docs.to_parquet(model / "documents.parquet", index=False)
    page = tmp_path / "r.html"
    run = run_saetm(["report", model, "--out", page, "-q"], cwd=tmp_path, timeout=300)
    assert run.returncode == 0, run.stderr
    html = page.read_text(encoding="utf-8")
    assert "not a regular file" in html and "data:image/jpeg" not in html


# ------------------------------------------------------------------------------ topic labels


def test_huge_topic_labels_are_refused_when_set(model_copy):
    m = SAETM.load(model_copy)
    with pytest.raises(SaetmError, match=f"at most {MAX_LABEL_CHARS}") as e:
        m.set_topic_labels(["x" * 5_000_000] * m.n_topics)
    assert "\n" not in str(e.value)
    with pytest.raises(SaetmError, match="topic 2"):
        m.set_topic_labels({2: "y" * (MAX_LABEL_CHARS + 1)})
    assert m.topic_labels()[2] != "y" * (MAX_LABEL_CHARS + 1)
    m.set_topic_labels({2: "z" * MAX_LABEL_CHARS})  # the limit itself is fine
    assert m.topic_labels()[2] == "z" * MAX_LABEL_CHARS


def test_huge_saved_labels_are_ignored_at_load_and_the_report_is_small(model_copy, caplog):
    info = json.loads((model_copy / "model.json").read_text())
    info["custom_labels"] = ["short name", *(["w" * 1_000_000] * 3)]  # an edited model.json
    (model_copy / "model.json").write_text(json.dumps(info))
    m = SAETM.load(model_copy)
    assert "longer than 200 characters" in caplog.text and "topic 1, 2, 3" in caplog.text
    labels = m.topic_labels()
    assert labels[0] == "short name" and all(len(x) <= MAX_LABEL_CHARS for x in labels)
    assert labels[1].startswith("1: ")  # the topic's word label instead
    rc, _, err = run_main(["report", model_copy, "--out", model_copy / "r.html", "-q"])
    assert rc == 0, err
    assert (model_copy / "r.html").stat().st_size < 5_000_000


# ------------------------------------------------------------------------------ CSV without a header


def _write_csv(path, rows):
    import csv

    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)
    return path


@pytest.mark.parametrize("with_label", [False, True])
def test_csv_without_header_says_so_instead_of_echoing_a_paragraph(ng_corpus, tmp_path, with_label):
    from saetm.io.readers import read_documents

    docs = [" ".join(t.split()[:80]) for t in ng_corpus.texts[:30]]
    rows = [[d, g] for d, g in zip(docs, ng_corpus.labels)] if with_label else [[d] for d in docs]
    path = _write_csv(tmp_path / "docs.csv", rows)
    for argv in (["fit", path, "--out", tmp_path / "m"], ["fit", path, "--out", tmp_path / "m", "--text-field", "text"]):
        rc, _, err = run_main(argv)
        message = assert_one_line_error(rc, err, "no header row", "`text`")
        assert docs[0][:200] not in message and len(message) < 400  # the paragraph is not echoed back
    assert not (tmp_path / "m").exists()
    with pytest.raises(SaetmError, match="no header row"):
        read_documents(path)
    # with the header line the message asks for, the same rows read, every one a document
    fixed = _write_csv(tmp_path / "fixed.csv", [["text", "label"] if with_label else ["text"], *rows])
    assert read_documents(fixed).texts == docs


def test_a_long_real_header_still_works_when_named(ng_corpus, tmp_path):
    from saetm.io.readers import read_documents

    name = "What did the author write in this newsgroup post"
    path = _write_csv(tmp_path / "docs.csv", [[name, "group"], *([t, g] for t, g in
                                                              zip(ng_corpus.texts[:5], ng_corpus.labels))])
    assert len(read_documents(path, text_field=name, label_field="group")) == 5


# ------------------------------------------------------------------------------ numbers as dates

DAY = 86_400
START = 1_600_000_000  # 2020-09-13 in Unix seconds


def test_unix_timestamps_are_read_as_dates_not_years(tiny_model_dir, caplog):
    import logging

    m = SAETM.load(tiny_model_dir)
    n = m.doc_topics_.shape[0]
    seconds = [START + 9 * DAY * i for i in range(n)]  # about three years
    with caplog.at_level(logging.INFO, logger="saetm"):
        table = m.topics_over_time(dates=seconds)
    assert "Unix timestamps in seconds" in caplog.text and "2020-09-13" in caplog.text
    periods = table["period"].cat.categories
    assert 30 <= len(periods) <= 40 and periods[0] == "2020-09"  # months, as for real dates
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="saetm"):
        ms = m.topics_over_time(dates=[1000 * s + 123 for s in seconds])
    assert "in milliseconds" in caplog.text
    assert list(ms["period"].cat.categories) == list(periods)
    years = m.topics_over_time(dates=[1990 + i % 30 for i in range(n)])  # plausible years stay years
    assert list(years["period"].cat.categories) == [str(y) for y in range(1990, 2020)]


def test_the_number_of_periods_is_bounded_whatever_the_dates(tiny_model_dir):
    from saetm.analysis.time import MAX_PERIODS

    m = SAETM.load(tiny_model_dir)
    n = m.doc_topics_.shape[0]
    wide = [i * 250_000 for i in range(n)]  # whole numbers over 30 million: neither years nor timestamps
    with _deadline(60):
        assert len(m.topics_over_time(dates=wide)["period"].cat.categories) <= MAX_PERIODS
        for freq in ("Y", "decade", 10**7):
            with pytest.raises(SaetmError, match="saetm report --freq") as e:
                m.topics_over_time(dates=wide, freq=freq)
            assert "more than 1,000" in str(e.value)
        with pytest.raises(SaetmError, match="coarser"):
            m.topics_over_time(dates=[START + 9 * DAY * i for i in range(n)], freq="D")


def test_report_of_a_model_fitted_with_timestamps(tiny_files, tmp_path, caplog):
    import logging

    docs = tmp_path / "docs.jsonl"
    with open(tiny_files / "docs.jsonl", encoding="utf-8") as f, open(docs, "w", encoding="utf-8") as out:
        for i, line in enumerate(f):
            out.write(json.dumps({**json.loads(line), "ts": START + 9 * DAY * i}) + "\n")
    model = tmp_path / "model"
    with caplog.at_level(logging.INFO, logger="saetm"):
        rc, _, err = run_main(["fit", docs, "--out", model, "--embeddings", tiny_files / "emb.npy", "--date-field",
                               "ts", "--n-atoms", "256", "--k", "8", "--sae-steps", "50", "--min-df", "3",
                               "--topics", "4", "-q"])
    assert rc == 0, err
    assert "Unix timestamps in seconds" in caplog.text  # said when the file is read
    assert SAETM.load(model).documents_["date"][0].year == 2020
    with _deadline(120):
        rc, _, err = run_main(["report", model, "--out", tmp_path / "r.html", "-q"])
    assert rc == 0, err
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "Topics over time" in page and "2020-09" in page
    with _deadline(120):  # a frequency too fine for the span: refused, naming the option
        rc, _, err = run_main(["report", model, "--out", tmp_path / "d.html", "--freq", "D", "-q"])
    assert_one_line_error(rc, err, "saetm report --freq", "1,000")
    assert not (tmp_path / "d.html").exists()
