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
