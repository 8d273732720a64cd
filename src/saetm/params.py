"""``SAETM``'s constructor and settings (scikit-learn's estimator protocol, :mod:`saetm.estimator`).

Types, ranges, defaults and help of every setting are rows of :mod:`saetm.settings`;
the research settings are grouped in the components of :mod:`saetm.components`.
"""

from __future__ import annotations

import textwrap
from typing import Callable, Sequence

from saetm.components import SAETraining, Words, Clustering, coerce, resolved
from saetm.errors import SaetmError
from saetm.estimator import Estimator
from saetm.settings import LEGACY, TABLE, default as _d, numpydoc, old_keyword_error

# signature defaults of the components: each model gets its own copy (see SAETMParams.__init__)
_WORDS, _CLUSTERING = Words(), Clustering()


class SAETMParams(Estimator):
    """The settings of a topic model read off a sparse autoencoder's atoms (SAE-TM).

    Stored as given (a component given as a string or dict becomes its object) and checked
    when ``fit`` starts; learned state ends in ``_``. The parameters below are the rows of
    :mod:`saetm.settings` (``docs/SETTINGS.md``); the research settings are grouped in the
    components of :mod:`saetm.components`.
    """

    def __init__(
        self,
        n_topics: int = _d("n_topics"),
        *,
        encoder: str | Callable = _d("encoder"),
        sae="auto",
        min_df: int = _d("min_df"),
        max_df: float = _d("max_df"),
        max_features: int = _d("max_features"),
        stop_words: str | Sequence[str] | None = _d("stop_words"),
        extra_stop_words: Sequence[str] | None = _d("extra_stop_words"),
        lemmatize: bool = _d("lemmatize"),
        merge_inflections: bool = _d("merge_inflections"),
        words: Words | str | dict = _WORDS,
        clustering: Clustering | dict = _CLUSTERING,
        seed: int = _d("seed"),
        cache: bool = _d("cache"),
        verbose: bool = _d("verbose"),
        **old,
    ):
        if old:
            raise old_keyword_error(old)
        self.n_topics = n_topics
        self.encoder = encoder
        self.sae = coerce("sae", sae) if isinstance(sae, dict) else sae  # {"k": 16}: SAETraining(k=16)
        self.min_df = min_df
        self.max_df = max_df
        self.max_features = max_features
        self.stop_words = stop_words
        self.extra_stop_words = extra_stop_words
        self.lemmatize = lemmatize
        self.merge_inflections = merge_inflections
        # the signature's default objects are shared: each model gets its own, so that
        # set_params(words__ranking=...) changes this model only
        self.words = Words() if words is _WORDS else coerce("words", words)
        self.clustering = Clustering() if clustering is _CLUSTERING else coerce("clustering", clustering)
        self.seed = seed
        self.cache = cache
        self.verbose = verbose

    def set_params(self, **params) -> "SAETMParams":
        """Change settings (``n_topics=9``, ``words__ranking="beta"``, ``words=Words(...)``);
        checked when they are next used. ``sae__k=16`` when ``sae`` is ``"auto"`` or ``"train"``
        makes it ``SAETraining(k=16)``."""
        old = [k for k in params if k in LEGACY or k.split("__")[0] not in self.get_params(deep=False)]
        if old:
            raise old_keyword_error(old)
        for key in list(params):
            name, _, field = key.partition("__")
            if not field:
                if name in ("words", "clustering"):
                    params[key] = coerce(name, params[key])
                continue
            if name == "sae" and not isinstance(self.sae, SAETraining):
                if not (isinstance(self.sae, str) and self.sae in ("auto", "train")):
                    raise SaetmError(f"{key}: sae={self.sae!r} trains no SAE; give sae=SAETraining(...) to train one")
                self.sae = SAETraining()
        return super().set_params(**params)


def _view(name: str, component: str, field: str):
    def get(self):
        return getattr(resolved(self, component), field)

    def refuse(self, value):
        raise old_keyword_error([name])

    get.__doc__ = f"The setting ``{component}__{field}`` (read-only; change it with set_params)."
    return property(get, refuse)


# Read-only views under the flat (older) names: m.word_ranking is
# m.words.ranking. Writing one is refused with the new spelling: settings change through set_params.
for _name, _row in LEGACY.items():
    setattr(SAETMParams, _name, _view(_name, _row.component, _row.field))
del _name, _row

if SAETMParams.__doc__:  # (python -OO drops docstrings)
    SAETMParams.__doc__ += "\n" + textwrap.indent(numpydoc(
        [row for row in TABLE if row.component is None],
        {"words": ("Words, str or dict", "stage 2 and the word lists (saetm.components.Words): EM settings, the "
                   "ranking (words='beta' is Words(ranking='beta')) and its diversity"),
         "clustering": ("Clustering or dict", "stage 3 (saetm.components.Clustering): atom space, prevalence power, "
                        "document weights and their smoothing")}), "    ") + "\n"
