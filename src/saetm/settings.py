"""Every setting of ``SAETM`` in one table: its type, range, default, help and ``saetm fit`` flag.

The table is the one home of a setting. The constructor's defaults, the validation
(:func:`check_params`), the ``saetm fit`` flags with their help (:mod:`saetm.cli.flags`)
and the settings reference in the API docs (:func:`settings_markdown`) all come from it.

A setting is top-level (``n_topics``) or a field of a component (``words.ranking``: the
``ranking`` of :class:`saetm.components.Words`, ``get_params`` key ``words__ranking``).
``legacy`` is the flat keyword the setting had before components (and in model files of
format 1): :mod:`saetm.migrate` maps old files through it, and an old keyword given to
``SAETM`` is refused with its new spelling.

This module imports neither numpy nor scikit-learn, so ``saetm --help`` stays fast.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from saetm.errors import SaetmError, SettingNameError

ARCHS = ("topk", "batchtopk", "relu", "jumprelu")
ATOM_SPACES = ("documents+coactivation", "documents", "coactivation", "decoder", "words")
WORD_VECTORS = ("glove", "encoder")
RANKINGS = ("coherent", "beta", "lift", "relevance")
DOC_WEIGHTS = ("centroid", "theta")
COMPONENTS = {"sae": "SAETraining", "words": "Words", "clustering": "Clustering"}


@dataclass(frozen=True)
class Setting:
    """One row of the table.

    name: ``"n_topics"`` or ``"component.field"``; kind: ``int``, ``float``, ``bool``,
    ``choice`` or ``any`` (checked elsewhere); low/high: the allowed range (open ends with
    ``low_open``/``high_open``); none_ok: None is allowed (it means what ``help`` says);
    flag: the ``saetm fit`` flag (``None``: no flag); cli_help: the flag's help where it differs
    from ``help`` (an inverse switch, files instead of a list; then no default is appended);
    legacy: the flat keyword of format 1; note: more for the API docs than the CLI help.
    """

    name: str
    kind: str
    default: object
    help: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple = ()
    none_ok: bool = False
    flag: str | None = None
    metavar: str | None = None
    cli_help: str | None = None
    legacy: str | None = None
    note: str | None = None  # more for the API docs (docstrings, docs/SETTINGS.md), not the CLI help

    @property
    def key(self) -> str:
        """The ``get_params``/``set_params`` key: ``words__ranking``."""
        return self.name.replace(".", "__")

    @property
    def component(self) -> str | None:
        return self.name.split(".")[0] if "." in self.name else None

    @property
    def field(self) -> str:
        return self.name.split(".")[-1]

    def check(self, value):
        """``value`` if it is allowed (ints as int, floats as float), else a one-line SaetmError."""
        if value is None and self.none_ok:
            return None
        where = self.key
        if self.kind == "bool":
            if type(value).__name__ not in ("bool", "bool_"):
                raise SaetmError(f"{where} must be True or False, got {value!r}")
            return bool(value)
        if self.kind == "choice":
            if not isinstance(value, str) or value not in self.choices:
                raise SaetmError(f"{where} must be one of {', '.join(self.choices)}, got {value!r}")
            return value
        if self.kind == "int":
            if isinstance(value, bool) or not hasattr(value, "__index__"):
                raise SaetmError(f"{where} must be an integer, got {value!r}")
            v = int(value)
            hi = math.inf if self.high is None else self.high
            if not self.low <= v <= hi:
                raise SaetmError(f"{where} must be at least {self.low}, got {v}" if hi == math.inf
                                 else f"{where} must be between {self.low} and {self.high}, got {v}")
            return v
        if self.kind == "float":
            try:
                v = float(value)
            except (TypeError, ValueError):
                raise SaetmError(f"{where} must be a number, got {value!r}") from None
            lo, hi = self.low, math.inf if self.high is None else self.high
            bad = ((v <= lo if self.low_open else v < lo) or (v >= hi if self.high_open else v > hi)
                   or math.isnan(v))
            if bad:
                raise SaetmError(f"{where} must be in {self.range_text()}, got {value}")
            return v
        return value

    def range_text(self) -> str:
        hi = "inf" if self.high is None else self.high
        return f"{'(' if self.low_open else '['}{self.low}, {hi}{')' if self.high_open else ']'}"


S = Setting
TABLE: tuple[Setting, ...] = (
    S("n_topics", "int", 20, "number of topics T (change later with retopic, no refit)", low=1, flag="--topics",
      cli_help="number of topics (default 20; change it later with `saetm retopic`, no refit)"),
    S("encoder", "any", "default",
      "default (bundled all-MiniLM-L6-v2), static (word-piece vectors distilled from it, far faster, with their "
      "own shipped SAE), a sentence-transformers name or folder, or (Python) a callable list[str] -> (n, d) array",
      flag="--encoder", cli_help="sentence-transformers model name or folder (default: bundled all-MiniLM-L6-v2), "
      "or static: word-piece vectors distilled from it, far faster, with their own shipped SAE"),
    S("sae", "any", "auto",
      "auto (the SAE shipped for the encoder, else a trained one) | default (shipped) | train | a folder from "
      "`saetm train-sae` | (Python) a fitted SparseAutoencoder or SAETraining(...) settings to train one",
      flag="--sae", cli_help="auto | default (shipped) | train | a folder from `saetm train-sae` (default auto: the "
      "shipped SAE of the encoder unless --n-atoms, --k, --arch or --sae-steps ask for a trained one)"),
    S("sae.n_atoms", "int", None, "atoms of a trained SAE (default: 16 x embedding dim; images 2048)", low=2,
      none_ok=True, flag="--n-atoms", legacy="n_atoms"),
    S("sae.k", "int", 32, "active atoms per document of a trained SAE (images 16)", low=1, flag="--k", legacy="k"),
    S("sae.arch", "choice", "batchtopk", "architecture of an SAE trained on the corpus", choices=ARCHS,
      flag="--arch", legacy="arch"),
    S("sae.steps", "int", None, "SAE training steps (default: by corpus size; images 500)", low=1, none_ok=True,
      flag="--sae-steps", legacy="sae_steps"),
    S("min_df", "int", 5, "minimum document frequency of a word", low=1, flag="--min-df"),
    S("max_df", "float", 0.5, "maximum share of documents a word may appear in (1: no upper bound)", low=0.0,
      high=1.0, low_open=True, flag="--max-df", metavar="F"),
    S("max_features", "int", 10000, "maximum vocabulary size", low=1, flag="--max-features"),
    S("stop_words", "any", "english",
      "english (saetm's list), None, or a list of words that replaces it", flag="--no-english-stop-words",
      cli_help="do not remove saetm's English stop words (with --stop-words: use only those)"),
    S("extra_stop_words", "any", None,
      "words removed in addition to stop_words (a corpus's boilerplate)", flag="--stop-words", metavar="FILE",
      cli_help="more stop words: a text file with one word per line ('#' starts a comment), added to the English "
      "list; repeat for several files"),
    S("lemmatize", "bool", False,
      "replace every word by its lemma before counting (simplemma, English): topics list lemmas such as 'use' "
      "for using/used", flag="--lemmatize"),
    S("merge_inflections", "bool", False,
      "count the vocabulary's inflections of one word (gun/guns, coin/coins/coined) as one, shown as its most "
      "frequent form", flag="--merge-inflections"),
    S("words.ranking", "choice", "coherent",
      "how topic words are chosen and ordered: coherent (co-occurring words, few repeated across topics), "
      "beta (the paper's), lift or relevance", choices=RANKINGS, flag="--word-ranking", legacy="word_ranking",
      note="coherent: words the topic's atoms emit more than the atoms on average, each in at most two topics, "
      "ordered so the leading words co-occur in the fitted documents (saetm.topics.wordrank); all but beta compare "
      "beta with the atoms' marginal word distribution (SAETM.word_reference); relevance uses lambda = 0.6"),
    S("words.diversity", "float", 0.2,
      "coherent ranking: mean NPMI a word loses per larger topic already listing it (0: each topic on its own; "
      "higher: fewer words shared between topics)", low=0.0, high_open=True, flag="--word-diversity",
      metavar="P", legacy="word_diversity",
      note="a word among the first 25 of a larger topic loses this much per such topic, and after a topic's first "
      "10 words 2.5 times this per other topic listing it; changing it re-ranks "
      "words without refitting (set_params(words__diversity=...), saetm retopic --word-diversity)"),
    S("words.background_weight", "float", 0.3, "pi, the fixed weight of the background word distribution (EM)",
      low=0.0, high=1.0, high_open=True, legacy="background_weight"),
    S("words.idf", "bool", False, "weight word counts by IDF when learning word distributions", flag="--idf",
      legacy="idf"),
    S("words.em_max_iter", "int", 200, "EM stops after this many iterations", low=1, legacy="em_max_iter"),
    S("words.em_tol", "float", 1e-3, "EM stops when the NLL per token changes by less than this (relative)",
      low=0.0, high=1.0, legacy="em_tol"),
    S("clustering.atom_space", "choice", "documents+coactivation",
      "how atoms are placed when they are grouped into topics (words: the paper's GloVe embedding of their words; "
      "default: their documents' embeddings + co-activation)", choices=ATOM_SPACES, flag="--atom-space",
      legacy="atom_space", note="documents+coactivation: the theta-weighted mean embedding of each atom's documents "
      "next to its co-activation profile; decoder: the SAE's decoder directions; words: sparsified word "
      "distribution times word vectors (SPEC section 4, the paper); see saetm.topics.atomspace"),
    S("clustering.prevalence_power", "float", 0.5,
      "atoms weigh (mean activation)^P when clustered into topics (1: the paper's weighting, where atoms firing "
      "in most documents take whole topics)", low=0.0, high=1.0, flag="--prevalence-power", metavar="P",
      legacy="prevalence_power", note="each atom weighs its mean activation to the power p in the atom tree and "
      "the k-means (0: every used atom the same); beta still weighs atoms by their mean activation; takes effect "
      "at the next fit or retopic, which then rebuilds the atom tree (saetm.topics.merge)"),
    S("clustering.tau", "float", 0.9, "mass kept when sparsifying atom word distributions (atom_space words)",
      low=0.0, high=1.0, low_open=True, legacy="tau"),
    S("clustering.word_vectors", "choice", "glove", "word vectors for atom_space words", choices=WORD_VECTORS,
      flag="--word-vectors", legacy="word_vectors"),
    S("clustering.doc_weights", "choice", "centroid",
      "document-topic weights: the atoms' share of each document, weighted toward the topics nearest its "
      "embedding (centroid; keeps the embeddings as float16), or that share alone (theta: the paper's)",
      choices=DOC_WEIGHTS, flag="--doc-weights", legacy="doc_weights",
      note="centroid: centroids and topic weights fitted by EM (a von Mises-Fisher mixture, "
      "saetm.topics.docweights), exactly as transform weighs new documents"),
    S("clustering.doc_smoothing", "float", 0.5,
      "centroid weights: share of each document's prior spread evenly over all topics, the rest being its atoms' "
      "share (0: the atoms' share alone)", low=0.0, high=1.0, flag="--doc-smoothing", metavar="S",
      legacy="doc_smoothing", note="1: a uniform prior, the atoms only start the mixture; a document's weights "
      "still cover only the topics its atoms belong to; takes effect at the next fit or retopic"),
    S("clustering.doc_word_weight", "float", None,
      "centroid weights: how much each document's own words count beside its embedding (0: the embedding alone; "
      "default: the encoder's, 1, or 3 for static, 0 for images)", low=0.0, none_ok=True, flag="--doc-word-weight", metavar="B",
      note="b in exp((cos(embedding, topic centroid) + b cos(IDF-weighted words, topic word centroid)) / t) "
      "(saetm.topics.docwords); takes effect at the next fit or retopic"),
    S("seed", "int", 0, "seed of every random choice (SAE training, clustering): same seed and input, same topics",
      low=0, high=2**32 - 1, flag="--seed"),
    S("cache", "bool", True, "read and write the embedding and SAE caches in $SAETM_CACHE (~/.cache/saetm)",
      flag="--no-cache", cli_help="neither read nor write the embedding and SAE caches in $SAETM_CACHE "
      "(~/.cache/saetm)"),
    S("verbose", "bool", True, "progress output (CLI: -q turns it off)"),
)
del S
BY_NAME = {s.name: s for s in TABLE}
BY_KEY = {s.key: s for s in TABLE}
LEGACY = {s.legacy: s for s in TABLE if s.legacy}
TOP_LEVEL = tuple(s.name for s in TABLE if s.component is None) + tuple(
    c for c in COMPONENTS if c not in BY_NAME)


def default(name: str):
    """The table's default of ``name`` (``"n_topics"``, ``"words.ranking"``)."""
    return BY_NAME[name].default


def fields(component: str) -> list[Setting]:
    """The rows of one component, in table order."""
    return [s for s in TABLE if s.component == component]


def check(name: str, value):
    """``value`` checked against the row ``name``."""
    return BY_NAME[name].check(value)


def old_keyword_error(keys) -> SettingNameError:
    """The one-line error for flat keywords of the settings before components."""
    parts = []
    for key in keys:
        row = LEGACY.get(key)
        if row is None:
            valid = ", ".join(TOP_LEVEL)
            return SettingNameError(f"unknown parameter {key!r}; valid: {valid}")
        parts.append(f"{key} is now {row.key} ({row.component}={COMPONENTS[row.component]}({row.field}=...), "
                     f"or set_params({row.key}=...))")
    return SettingNameError("; ".join(parts))


def new_keys(params: dict) -> dict:
    """``params`` with the flat keywords of the settings before components spelt as
    ``set_params`` keys (``{"word_ranking": "beta"}`` → ``{"words__ranking": "beta"}``)."""
    return {(LEGACY[k].key if k in LEGACY else k): v for k, v in params.items()}


def check_params(m) -> None:
    """Validate every setting of the estimator ``m`` against the table (scikit-learn habit:
    once, at the boundary), then the settings that depend on each other."""
    from saetm.components import resolved

    for row in TABLE:
        if row.kind == "any":
            continue
        comp = resolved(m, row.component) if row.component else m
        row.check(getattr(comp, row.field))
    training = resolved(m, "sae")
    if training.n_atoms is not None:
        if training.k >= training.n_atoms:
            raise SaetmError(f"k={training.k} must be smaller than n_atoms={training.n_atoms}; "
                             "lower --k (sae__k) or raise --n-atoms (sae__n_atoms)")
        if m.n_topics > training.n_atoms:
            raise SaetmError(f"n_topics={m.n_topics} is more than the n_atoms={training.n_atoms} atoms that make "
                             "topics; lower --topics (n_topics) or raise --n-atoms (sae__n_atoms)")
    from saetm.words.vocab import check_stop_words

    check_stop_words(m.stop_words, m.extra_stop_words)  # a one-line error for an unsupported value


def numpydoc(rows, extra: dict | None = None) -> str:
    """A numpydoc ``Parameters`` section for ``rows`` (the table's help and defaults);
    ``extra``: ``{name: (type, text)}`` for parameters that are not rows (components)."""
    import textwrap

    kinds = {"int": "int", "float": "float", "bool": "bool", "any": "object"}
    out = ["Parameters", "----------"]
    items = [(r.field, "{" + ", ".join(repr(c) for c in r.choices) + "}" if r.kind == "choice"
              else kinds[r.kind] + (" or None" if r.none_ok else ""),
              f"{r.help} (default {r.default!r})" + (f". {r.note[0].upper()}{r.note[1:]}" if r.note else ""))
             for r in rows]
    items += [(name, kind, text) for name, (kind, text) in (extra or {}).items()]
    for name, kind, text in items:
        out.append(f"{name} : {kind}")
        out += textwrap.wrap(text[0].upper() + text[1:] + ".", 88, initial_indent="    ", subsequent_indent="    ")
    return "\n".join(out)


def settings_markdown() -> str:
    """The settings reference for the API docs (``docs/SETTINGS.md``; regenerate it with
    ``python -m saetm.settings > docs/SETTINGS.md``)."""
    lines = ["# saetm settings", "",
             "Generated from `saetm/settings.py` (`python -m saetm.settings > docs/SETTINGS.md`). A setting "
             "`a__b` is the field `b` of the component `a`: `SAETM(words=Words(ranking=\"beta\"))`, "
             "`SAETM(words=\"beta\")` or `set_params(words__ranking=\"beta\")`; `sae` takes "
             "`SAETraining(n_atoms=..., k=..., arch=..., steps=...)`.", "",
             "| setting | `saetm fit` flag | default | allowed | what it does |", "|---|---|---|---|---|"]
    for s in TABLE:
        allowed = (" / ".join(s.choices) if s.kind == "choice" else s.range_text() if s.low is not None
                   else "True / False" if s.kind == "bool" else "see text")
        if s.none_ok:
            allowed += " or None"
        what = (s.help + (f"; {s.note}" if s.note else "")).replace('|', '\\|')  # a table cell
        lines.append(f"| `{s.key}` | {f'`{s.flag}`' if s.flag else ''} | `{s.default!r}` | {allowed} | {what} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(settings_markdown(), end="")
