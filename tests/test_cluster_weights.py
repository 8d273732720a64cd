"""Atoms weigh θ̄^p when they are clustered into topics (SAETM(prevalence_power), saetm 0.7)."""

import copy

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from saetm.errors import SaetmError
from saetm.model import SAETM
from saetm.topics.hierarchy import build_atom_tree, cut
from saetm.topics.merge import PREVALENCE_POWER, build_topics, cluster_atoms, cluster_weights

from _old_formats import as_format1


def test_cluster_weights_by_hand():
    p = np.array([0.0, 0.04, 0.25, np.nan, 1.0])
    np.testing.assert_allclose(cluster_weights(p, 0.5), [0.0, 0.2, 0.5, 0.0, 1.0])
    np.testing.assert_allclose(cluster_weights(p, 1.0), [0.0, 0.04, 0.25, 0.0, 1.0])
    np.testing.assert_allclose(cluster_weights(p, 0.0), [0.0, 1.0, 1.0, 0.0, 1.0])  # unused atoms stay out
    assert PREVALENCE_POWER == 0.5


def _two_themes_and_a_generic_atom():
    """Five atoms near (−1, 0), five near (1, 0), and one atom firing 100× as much at (0, 1.2).

    Weighted k-means, T = 2: the generic atom alone + both themes together costs 10 (the
    themes' spread); the themes apart with the generic atom in one of them costs
    5w/(5 + w)·(1 + 1.2²): 11.6 with w = θ̄ = 100 (so θ̄-weighting gives it a topic of its
    own) but 8.1 with w = θ̄^0.5 = 10."""
    rng = np.random.default_rng(0)
    E = np.vstack([np.c_[np.full(5, -1.0), 0.01 * rng.standard_normal(5)],
                   np.c_[np.full(5, 1.0), 0.01 * rng.standard_normal(5)],
                   [[0.0, 1.2]]])
    theta_bar = np.r_[np.full(10, 0.01), 1.0]
    return E, theta_bar


@pytest.mark.parametrize("power, alone", [(1.0, True), (0.5, False)])
def test_a_generic_atom_takes_a_topic_only_when_weighted_by_its_full_mass(power, alone):
    E, theta_bar = _two_themes_and_a_generic_atom()
    w = cluster_weights(theta_bar, power)
    labels = cluster_atoms(E, w, 2, init=cut(build_atom_tree(E, w), 2))
    generic_alone = (labels == labels[10]).sum() == 1
    themes_apart = labels[0] != labels[5] and len(set(labels[:5])) == len(set(labels[5:10])) == 1
    assert generic_alone == alone and themes_apart != alone


def test_the_fitted_model_clusters_with_the_weights_its_tree_was_built_with(fitted_model, tmp_path):
    m = copy.deepcopy(fitted_model)
    T = m.n_topics
    assert m.prevalence_power == m.atom_tree_.power == 0.5

    def expected(power):
        w = cluster_weights(m.feature_prob_, power)
        labels = cluster_atoms(m.atom_embeddings_, w, T, seed=m.seed, init=cut(build_atom_tree(m.atom_embeddings_, w), T))
        return build_topics(m.feature_words_, m.feature_prob_, labels, T).atom_topic

    np.testing.assert_array_equal(m.atom_topic_, expected(0.5))
    # a new power rebuilds the tree at retopic (no refit); the words still weigh atoms by θ̄
    m.set_params(clustering__prevalence_power=1.0).retopic(T)
    assert m.atom_tree_.power == 1.0
    np.testing.assert_array_equal(m.atom_topic_, expected(1.0))
    assert not np.array_equal(m.atom_topic_, fitted_model.atom_topic_)

    m.save(tmp_path / "m")
    back = SAETM.load(tmp_path / "m")
    assert back.prevalence_power == back.atom_tree_.power == 1.0
    np.testing.assert_array_equal(back.retopic(T).atom_topic_, m.atom_topic_)


def test_models_saved_before_0_7_keep_their_topics(fitted_model, tmp_path):
    m = copy.deepcopy(fitted_model).set_params(clustering__prevalence_power=1.0).retopic(fitted_model.n_topics)
    m.save(tmp_path / "old")
    as_format1(tmp_path / "old", drop=("prevalence_power",))  # a model.json of saetm < 0.7
    state = dict(load_file(tmp_path / "old" / "state.safetensors"))
    del state["tree.power"]
    save_file(state, tmp_path / "old" / "state.safetensors")
    old = SAETM.load(tmp_path / "old")
    assert old.prevalence_power == old.atom_tree_.power == 1.0
    np.testing.assert_array_equal(old.retopic(m.n_topics).atom_topic_, m.atom_topic_)


def test_bad_prevalence_powers_are_refused(fitted_model, ng_corpus, tmp_path):
    for bad in (-0.5, 1.5, float("nan"), "half"):
        with pytest.raises(SaetmError, match="prevalence_power"):
            copy.deepcopy(fitted_model).set_params(clustering__prevalence_power=bad).retopic(4)
        with pytest.raises(SaetmError, match="prevalence_power"):
            SAETM(clustering={"prevalence_power": bad}, verbose=False).fit(["a text"] * 3)
    fitted_model.save(tmp_path / "m")
    state = dict(load_file(tmp_path / "m" / "state.safetensors"))
    state["tree.power"] = np.array([7.0])
    save_file(state, tmp_path / "m" / "state.safetensors")
    with pytest.raises(SaetmError, match="invalid tree.power"):
        SAETM.load(tmp_path / "m")
