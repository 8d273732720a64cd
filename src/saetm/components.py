"""The component objects that group ``SAETM``'s research settings.

Each is a small scikit-learn estimator (``get_params``/``set_params``/``clone``/``repr``)
whose fields and defaults are rows of :mod:`saetm.settings`:

- :class:`SAETraining`: the SAE trained on the corpus (``SAETM(sae=SAETraining(k=16))``);
- :class:`Words`: stage 2, the atoms' word distributions (EM) and each topic's word list
  (``SAETM(words="beta")`` is ``Words(ranking="beta")``);
- :class:`Clustering`: stage 3, how atoms are grouped into topics and documents weighted by them.

``SAETM(...).get_params(deep=True)`` lists their fields as ``words__ranking`` etc., and
``set_params(words__diversity=0.0)`` changes one.
"""

from __future__ import annotations

from sklearn.base import BaseEstimator

from saetm.errors import SaetmError
from saetm.settings import COMPONENTS, default as _d, fields


class _Component(BaseEstimator):
    name = ""  # the SAETM parameter that holds it

    def check(self) -> "_Component":
        """Every field checked against the table; a one-line SaetmError for the first bad one."""
        for row in fields(self.name):
            row.check(getattr(self, row.field))
        return self

    def set_params(self, **params):
        try:
            return super().set_params(**params)
        except ValueError as e:
            raise SaetmError(" ".join(str(e).split())) from None


class SAETraining(_Component):
    """How an SAE is trained on the corpus (``sae="train"`` is ``SAETraining()``).

    Parameters
    ----------
    n_atoms : int or None
        Atoms (None: 16 × the embedding dimension).
    k : int
        Active atoms per document.
    arch : str
        ``"batchtopk"``, ``"topk"``, ``"relu"`` or ``"jumprelu"``.
    steps : int or None
        Training steps (None: by corpus size).
    """

    name = "sae"

    def __init__(self, n_atoms=_d("sae.n_atoms"), k=_d("sae.k"), arch=_d("sae.arch"), steps=_d("sae.steps")):
        self.n_atoms = n_atoms
        self.k = k
        self.arch = arch
        self.steps = steps


class Words(_Component):
    """Stage 2: the atoms' word distributions and the order of each topic's words.

    Parameters
    ----------
    ranking : str
        ``"coherent"`` (words the topic's atoms emit more than the atoms on average, each in at
        most two topics, ordered so the leading words co-occur in the fitted documents; see
        :mod:`saetm.topics.wordrank`), ``"beta"`` (β alone, the paper), ``"lift"`` or
        ``"relevance"`` (λ = 0.6). All but beta compare β with the atoms' marginal word
        distribution (``SAETM.word_reference``).
    diversity : float
        For ``"coherent"``: the mean NPMI a word loses in a topic's order for each larger topic
        already listing it among its first 25 words (0: every topic on its own). Changing it
        re-ranks words without refitting (``set_params(words__diversity=...)``,
        ``saetm retopic --word-diversity``).
    background_weight : float
        π, the fixed weight of the background word distribution, in [0, 1).
    idf : bool
        Weight word counts by normalised IDF.
    em_max_iter, em_tol : int, float
        EM stops after ``em_max_iter`` iterations or when the NLL per token changes by less
        than ``em_tol`` (relative) in one iteration.
    """

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
    """Stage 3: how atoms are grouped into topics and documents weighted by those topics.

    Parameters
    ----------
    atom_space : str
        Where atoms sit when they are clustered: ``"documents+coactivation"`` (the θ-weighted
        mean embedding of each atom's documents next to its co-activation profile),
        ``"documents"``, ``"coactivation"``, ``"decoder"`` (the SAE's decoder directions) or
        ``"words"`` (the paper: sparsified word distribution · word vectors). See
        :mod:`saetm.topics.atomspace`.
    prevalence_power : float
        p in [0, 1]: each atom weighs θ̄^p, its mean activation to the power p, in the tree
        and the k-means (1: θ̄, the paper; 0: every used atom the same). β still weighs atoms
        by θ̄. Takes effect at the next fit or ``retopic`` (which then rebuilds the atom tree).
    tau : float
        Mass kept when sparsifying atom word distributions (``atom_space="words"``).
    word_vectors : str
        ``"glove"`` (GloVe 6B 50-d) or ``"encoder"`` (the encoder on single words), for
        ``atom_space="words"``.
    doc_weights : str
        ``"centroid"`` (each topic's share of the document's atom activations θ, reweighted
        toward the topics whose centroid is nearest to the document's embedding, fitted by EM;
        the model keeps the embeddings as float16; see :mod:`saetm.topics.docweights`) or
        ``"theta"`` (the share of θ alone, the paper).
    doc_smoothing : float
        For ``"centroid"``: the share of each document's prior spread evenly over all topics,
        the rest being its atoms' θ share (0: θ alone; 1: a uniform prior). Takes effect at the
        next fit or ``retopic``.
    """

    name = "clustering"

    def __init__(self, atom_space=_d("clustering.atom_space"), prevalence_power=_d("clustering.prevalence_power"),
                 tau=_d("clustering.tau"), word_vectors=_d("clustering.word_vectors"),
                 doc_weights=_d("clustering.doc_weights"), doc_smoothing=_d("clustering.doc_smoothing")):
        self.atom_space = atom_space
        self.prevalence_power = prevalence_power
        self.tau = tau
        self.word_vectors = word_vectors
        self.doc_weights = doc_weights
        self.doc_smoothing = doc_smoothing


CLASSES = {"sae": SAETraining, "words": Words, "clustering": Clustering}
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
