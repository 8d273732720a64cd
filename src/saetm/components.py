"""The component objects that group ``SAETM``'s research settings.

Each follows scikit-learn's estimator protocol (``get_params``/``set_params``/``clone``/``repr``, :mod:`saetm.estimator`)
whose fields and defaults are rows of :mod:`saetm.settings`:

- :class:`SAETraining`: the SAE trained on the corpus (``SAETM(sae=SAETraining(k=16))``);
- :class:`Words`: stage 2, the atoms' word distributions (EM) and each topic's word list
  (``SAETM(words="beta")`` is ``Words(ranking="beta")``);
- :class:`Clustering`: stage 3, how atoms are grouped into topics and documents weighted by them.

``SAETM(...).get_params(deep=True)`` lists their fields as ``words__ranking`` etc., and
``set_params(words__diversity=0.0)`` changes one.
"""

from __future__ import annotations

from saetm.errors import SaetmError
from saetm.estimator import Estimator
from saetm.settings import COMPONENTS, default as _d, fields, numpydoc


class _Component(Estimator):
    name = ""  # the SAETM parameter that holds it


class SAETraining(_Component):
    """How an SAE is trained on the corpus (``sae="train"`` is ``SAETraining()``)."""

    name = "sae"

    def __init__(self, n_atoms=_d("sae.n_atoms"), k=_d("sae.k"), arch=_d("sae.arch"), steps=_d("sae.steps")):
        self.n_atoms = n_atoms
        self.k = k
        self.arch = arch
        self.steps = steps


class Words(_Component):
    """Stage 2: the atoms' word distributions and the order of each topic's words."""

    name = "words"

    def __init__(self, ranking=_d("words.ranking"), diversity=_d("words.diversity"),
                 background_weight=_d("words.background_weight"), idf=_d("words.idf"),
                 em_max_iter=_d("words.em_max_iter"), em_tol=_d("words.em_tol")):
        self.ranking = ranking
        self.diversity = diversity
        self.background_weight = background_weight
        self.idf = idf
        self.em_max_iter = em_max_iter
        self.em_tol = em_tol


class Clustering(_Component):
    """Stage 3: how atoms are grouped into topics and documents weighted by those topics."""

    name = "clustering"

    def __init__(self, atom_space=_d("clustering.atom_space"), prevalence_power=_d("clustering.prevalence_power"),
                 tau=_d("clustering.tau"), word_vectors=_d("clustering.word_vectors"),
                 doc_weights=_d("clustering.doc_weights"), doc_smoothing=_d("clustering.doc_smoothing"),
                 doc_word_weight=_d("clustering.doc_word_weight")):
        self.atom_space = atom_space
        self.prevalence_power = prevalence_power
        self.tau = tau
        self.word_vectors = word_vectors
        self.doc_weights = doc_weights
        self.doc_smoothing = doc_smoothing
        self.doc_word_weight = doc_word_weight


CLASSES = {"sae": SAETraining, "words": Words, "clustering": Clustering}
for _name, _cls in CLASSES.items():  # the parameters' documentation is the table's
    if _cls.__doc__:  # (python -OO drops docstrings)
        _cls.__doc__ = f"{_cls.__doc__.rstrip()}\n\n{numpydoc(fields(_name))}\n"
del _name, _cls
SHORTHAND = {"words": "ranking", "clustering": "atom_space"}  # what a string given for the component sets
assert {c: cls.__name__ for c, cls in CLASSES.items()} == COMPONENTS


def coerce(name: str, value):
    """The component ``name`` from what a user gave: the object itself, a dict of its fields,
    a string (its shorthand field) or None (the defaults)."""
    cls = CLASSES[name]
    if isinstance(value, cls):
        return value
    if value is None:
        return cls()
    if isinstance(value, dict):
        try:
            return cls(**value)
        except TypeError:
            valid = ", ".join(cls().get_params())
            raise SaetmError(f"{name}={value!r} has an unknown field; {cls.__name__} takes {valid}") from None
    if isinstance(value, str) and name in SHORTHAND:
        return cls(**{SHORTHAND[name]: value})
    raise SaetmError(f"{name} must be a {cls.__name__}(...), a dict of its fields"
                     + (f" or a {SHORTHAND[name]} name" if name in SHORTHAND else "") + f", got {value!r}")


def resolved(m, name: str):
    """The component ``name`` of the estimator ``m``; for ``sae``, the training settings in
    use when it trains one (the defaults unless ``m.sae`` is an :class:`SAETraining`)."""
    value = getattr(m, name)
    if name == "sae":
        return value if isinstance(value, SAETraining) else _DEFAULT_TRAINING
    return value if isinstance(value, CLASSES[name]) else coerce(name, value)


_DEFAULT_TRAINING = SAETraining()
