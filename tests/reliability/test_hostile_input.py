"""Inputs made to exhaust time or memory: special files given as images, timestamps
given as dates, images that cannot be read, huge topic labels.

Each one must end quickly with a one-line message, or be skipped with a warning, and
never hang or build something the size of the attacker's choosing.
"""

import json

import pytest

from saetm.errors import SaetmError
from saetm.model import MAX_LABEL_CHARS, SAETM

from _reliability import assert_one_line_error, run_main


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
