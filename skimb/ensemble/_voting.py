"""A soft vote of taggers: the mean of their per-word tag probabilities, decoded to IOB2; of CRF
taggers, their log-linear pool (mean emissions and mean CRF scores), decoded by Viterbi."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import numpy as np
from sklearn.base import BaseEstimator, MetaEstimatorMixin, clone, is_classifier
from sklearn.utils import Bunch
from sklearn.utils.validation import check_is_fitted

from .._validation import check_token_lists
from ..tokens import LinearChainCRF, decode_tags
from ..utils._param_validation import Options, Satisfies, validate_params
from ..utils._schemes import check_scheme
from ..utils._tags import apply_text_tags

__all__ = ["VotingTagger"]

_OWN_PARAMS = ("estimators", "weights", "decoding")


def _named_taggers(value) -> bool:
    """A non-empty list of (name, tagger) pairs with distinct names that can serve as parameters."""
    if not isinstance(value, list) or not value:
        return False
    if not all(isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str) for p in value):
        return False
    names = [n for n, _ in value]
    return (len(set(names)) == len(names) and all(n and "__" not in n and n not in _OWN_PARAMS for n in names)
            and all(all(callable(getattr(t, m, None)) for m in ("get_params", "fit", "predict_proba")) for _, t in value))


def _non_negative_weights(value) -> bool:
    try:
        w = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        return False
    return w.ndim == 1 and len(w) > 0 and bool(np.all(np.isfinite(w))) and bool(np.all(w >= 0)) and w.sum() > 0


def _is_crf_tagger(est) -> bool:
    """Whether ``est`` is set to decode with a CRF (read from its parameters: known before fitting)."""
    return est.get_params(deep=False).get("decoding") == "crf"


def _crf_scores(name, est) -> dict:
    """A fitted CRF member's learned ``transitions``, ``start`` and ``end`` scores."""
    crf = getattr(getattr(getattr(est, "net_", None), "module_", None), "crf", None)
    if crf is None:
        raise ValueError(f"VotingTagger: member {name!r} has no fitted CRF (net_.module_.crf) to pool; refit it "
                         "with decoding='crf', or vote with decoding='repair' or 'constrained'.")
    return crf.decoding_scores()


def _pooled_crf(labels, scores) -> LinearChainCRF:
    """A CRF over ``labels`` with the learned ``scores`` (float64: the pool is not rounded to float32)."""
    import torch

    crf = LinearChainCRF(labels).double()
    with torch.no_grad():
        for name, value in scores.items():
            getattr(crf, name).copy_(torch.as_tensor(value))
    return crf


def _pairs(value) -> list:
    """``value`` as (name, estimator) pairs, or [] where it is not a list of pairs (set_params
    must not raise on a bad value: fit reports it)."""
    if not isinstance(value, list):
        return []
    return [p for p in value if isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str)]


class VotingTagger(MetaEstimatorMixin, BaseEstimator):
    """Soft vote of token classifiers (NER): the weighted mean of their per-word tag
    probabilities, decoded to valid IOB2 tags; a vote of CRF taggers pools their CRFs.

    scikit-learn's ``VotingClassifier`` cannot vote taggers (``y`` is a list of tag lists); this
    is its counterpart for :class:`~skimb.TransformerTokenClassifier` and any scikit-learn-style
    tagger (``get_params``, ``fit(X, y)``, ``predict_proba(X)`` giving one ``(n_words, n_tags)``
    array per sentence, ``classes_``). Each member is cloned and fitted on the same data; their probabilities are
    averaged word by word and decoded as a tagger's logits are (``decoding``).

    Members fitted with ``decoding="crf"`` vote as CRFs (``decoding="crf"``, which "auto" picks for them):
    the weighted mean of their emissions (``decision_function``) and of their learned transition,
    start and end scores is itself a linear-chain CRF (the members' log-linear pool), which Viterbi
    decodes exactly. Averaging their marginals instead decodes without transitions and loses what the
    CRF adds: on MIT-Restaurant (3 seeds) the pool of a CRF tagger and a CRF + R-Drop tagger scores
    0.8041 span macro-F1 against 0.8010 for the mean of their marginals (0.8058 for CRF + R-Drop
    alone); on TweetNER7 0.5581 against 0.5563 for the better member alone.

    The vote of CALoRA on a focal-loss stage 1 and HAMR on focal loss is the best tagger measured
    where sentences are few and most hold no entity (CoNLL-2003 with 70% entity-free sentences, 600
    sentences, 6 seeds: 0.579 span macro-F1 against focal loss's 0.527, every seed up; +2.2 points at
    1,200 sentences and +1.2 at 2,400; ``docs/benchmarks.md``, rounds 19-21). ``skimb
    compare`` runs it as ``vote_focal_calora_hamr``.

    Parameters
    ----------
    estimators : list of (str, tagger)
        The members, by name; ``name__param`` reaches a member's parameter (``GridSearchCV``,
        ``set_params``). Names must be distinct, non-empty, free of ``"__"`` and none of this
        class's parameters. All members must learn the same tags from ``y`` (the same ``classes_``).
    weights : array-like of shape (n_estimators,), default=None
        Non-negative weight of each member's probabilities (under "crf": of its emissions and CRF
        scores); None weighs them equally.
    decoding : {"auto", "crf", "repair", "constrained"}, default="auto"
        How the members' scores become IOB2 tags. "crf": the members' log-linear pool, Viterbi over
        valid sequences of their weighted mean emissions with the weighted mean of their CRFs'
        transition, start and end scores; ``predict_proba`` gives each word's marginals under that
        pooled CRF. It needs every member set to ``decoding="crf"`` (a ``ValueError`` before any
        training names those that are not). "repair" takes each word's most probable tag of the
        mean probabilities (a CRF member's marginals) and turns an ``I-X`` that continues no ``X``
        entity into ``B-X``; "constrained" is Viterbi decoding of the mean probabilities over valid
        sequences, without learned transitions (:func:`skimb.tokens.decode_tags`). "auto": "crf"
        where every member has ``decoding="crf"``, otherwise "repair".

    Attributes
    ----------
    estimators_ : list of taggers
        The fitted clones, in the order of ``estimators`` (after an interrupt, those fitted
        before it: see Notes).
    named_estimators_ : Bunch
        The fitted clones by name.
    classes_ : ndarray of str
        The IOB2 tags, the members' ``classes_``.
    entity_types_ : list of str
        Entity types, sorted.
    weights_ : ndarray of shape (n_estimators_fitted,)
        The fitted members' weights, summing to 1 (``weights`` set after ``fit`` take effect at
        the next ``fit``).
    training_interrupted_ : bool
        Whether a Ctrl-C ended the training of a member (see Notes).

    See Also
    --------
    skimb.tokens.decode_tags : the decoding, on scores you already have.

    Notes
    -----
    The vote averages probabilities, which leave out a member's tuned decision rule
    (``threshold="tuned"``): it warns and ignores the rule. All members must read ``y`` in one tagging
    scheme. Unlike scikit-learn's voting ensembles, a member cannot be ``"drop"``.

    Members that hold out a validation split (``validation_fraction``) with the same
    ``random_state`` hold out the same sentences, so a HAMR member's meta set and the other
    members' validation split coincide. Each member trains as it would alone: the vote costs the
    sum of their fits (``skimb compare`` reuses the fits that its other methods share).

    Interrupting ``fit`` (Ctrl-C) stops the training of the members: the members fitted so far
    vote (a :class:`~skimb.TransformerTokenClassifier` interrupted mid-training among them, as it
    keeps a usable model), with a warning naming those left out.

    Examples
    --------
    >>> from skimb import TransformerTokenClassifier
    >>> from skimb.ensemble import VotingTagger
    >>> focal = dict(loss="focal", loss__gamma=2.0, max_length=64)
    >>> vote = VotingTagger([("calora", TransformerTokenClassifier(head="calora", **focal)),
    ...                      ("hamr", TransformerTokenClassifier(training="hamr", validation_fraction=0.1, **focal))])
    >>> params = vote.get_params()
    >>> params["calora__head"], params["hamr__training"], params["decoding"]
    ('calora', 'hamr', 'auto')

    Taggers fitted with a CRF vote as one CRF (``decoding="auto"`` is "crf" for them):

    >>> crfs = VotingTagger([("crf", TransformerTokenClassifier(decoding="crf")),
    ...                      ("crf_rdrop", TransformerTokenClassifier(decoding="crf", training="rdrop"))])
    """

    _parameter_constraints = {
        "estimators": [Satisfies(_named_taggers, "a non-empty list of (name, tagger) pairs with distinct names "
                                 "(non-empty, without '__', not 'estimators', 'weights' or 'decoding'), every tagger "
                                 "an estimator with get_params(), fit() and predict_proba()", bad=[[], "tagger", [("a__b", None)]])],
        "weights": [None, Satisfies(_non_negative_weights, "an array-like of non-negative finite weights, one per "
                                    "estimator, with a positive sum", bad=["heavy", [-1.0, 2.0], [0.0, 0.0]])],
        "decoding": [Options("auto", "crf", "repair", "constrained")],
    }

    def __init__(self, estimators, *, weights=None, decoding="auto"):
        self.estimators = estimators
        self.weights = weights
        self.decoding = decoding

    def __sklearn_tags__(self):
        return apply_text_tags(super().__sklearn_tags__())  # neither classifier nor regressor: a tagger

    # ----------------------------------------------------------- parameters, as scikit-learn's ensembles
    def get_params(self, deep=True):
        """This estimator's parameters; with ``deep``, also each member by name and its parameters
        as ``name__param``."""
        params = super().get_params(deep=False)
        if deep:
            for name, est in _pairs(self.estimators):
                params[name] = est
                if hasattr(est, "get_params"):
                    params.update({f"{name}__{k}": v for k, v in est.get_params(deep=True).items()})
        return params

    def set_params(self, **params):
        """Set parameters: this estimator's, a whole member by name, or ``name__param``."""
        if "estimators" in params:
            self.estimators = params.pop("estimators")
        names = [n for n, _ in _pairs(self.estimators)]
        replaced = {n: params.pop(n) for n in list(params) if n in names}
        if replaced:
            self.estimators = [(n, replaced.get(n, est)) for n, est in _pairs(self.estimators)]
        return super().set_params(**params) if params else self

    # ----------------------------------------------------------- fit and predict
    def fit(self, X, y, sample_weight=None):
        """Fit a clone of every member on ``X`` (lists of words) and ``y`` (lists of tags).

        Parameters
        ----------
        X : list of list of str
        y : list of list of str
            Tags, in the members' ``scheme``.
        sample_weight : array-like of shape (n_sentences,), default=None
            Passed to every member's ``fit``.

        Returns
        -------
        self
        """
        self._check_params()
        for name in [n for n in vars(self) if n.endswith("_") and not n.startswith("_")]:
            delattr(self, name)  # a refit that fails in training leaves no model of the earlier fit behind
        X = check_token_lists(X)
        # read once here: the first member's checks would use up a generator
        y = list(y) if isinstance(y, Iterator) else y
        sample_weight = list(sample_weight) if isinstance(sample_weight, Iterator) else sample_weight
        members = [(name, clone(est)) for name, est in self.estimators]
        self._check_members(members)
        self._check_member_data(members, X, y, sample_weight)
        weights = np.ones(len(members)) if self.weights is None else np.asarray(self.weights, dtype=float)
        members, weights = self._fit_members(members, weights, X, y, sample_weight)
        first_name, first = members[0]
        for name, est in members[1:]:
            if not np.array_equal(np.asarray(est.classes_), np.asarray(first.classes_)):
                raise ValueError(f"{type(self).__name__}: members {first_name!r} and {name!r} learned different tags "
                                 f"({list(first.classes_)} and {list(est.classes_)}) from the same y; every member "
                                 "must learn the same tags.")
        self.weights_ = weights / weights.sum()
        self.training_interrupted_ = len(members) < len(self.estimators) or any(
            getattr(est, "training_interrupted_", False) for _, est in members)
        self.estimators_ = [est for _, est in members]
        self.named_estimators_ = Bunch(**dict(members))
        self.classes_ = np.asarray(first.classes_)
        self.entity_types_ = sorted({str(c)[2:] for c in self.classes_ if c != "O"})
        return self

    def _fit_members(self, members, weights, X, y, sample_weight):
        """Fit the members in turn. An interrupt (Ctrl-C) ends the vote's training: the members
        fitted so far vote, the one interrupted included where it kept a usable model."""
        fit_kwargs = {} if sample_weight is None else {"sample_weight": sample_weight}
        for i, (name, est) in enumerate(members):
            try:
                est.fit(X, y, **fit_kwargs)
            except KeyboardInterrupt:  # a member that lets it through may be half-fitted: left out
                if i == 0:
                    raise
                return self._interrupted(members, weights, name, i)
            if getattr(est, "training_interrupted_", False) and i + 1 < len(members):
                return self._interrupted(members, weights, name, i + 1)
        return members, weights

    def _interrupted(self, members, weights, name, n_kept):
        if weights[:n_kept].sum() <= 0:  # no vote to keep
            raise KeyboardInterrupt(f"{type(self).__name__}: the members fitted before the interrupt all have weight 0")
        left_out = [n for n, _ in members[n_kept:]]
        warnings.warn(f"{type(self).__name__}: training was interrupted in member {name!r}; the vote is of the "
                      f"members fitted so far, {[n for n, _ in members[:n_kept]]}, without {left_out}. Fit again "
                      "for the vote of all members.", UserWarning, stacklevel=4)
        return members[:n_kept], weights[:n_kept]

    def _check_params(self):
        validate_params(self._parameter_constraints, self.get_params(deep=False), type(self).__name__)
        if self.weights is not None and len(self.weights) != len(self.estimators):
            raise ValueError(f"{type(self).__name__}: weights must have one entry per estimator "
                             f"({len(self.estimators)}), got {self.weights!r}.")
        self._decoding(self.estimators)  # decoding="crf" over a member that is no CRF: refused before training

    def _decoding(self, members) -> str:
        """The decoding of a vote of ``members`` ((name, tagger) pairs): ``decoding`` with "auto"
        resolved, from the members' parameters. "crf" over a member that is no CRF tagger is a
        ``ValueError`` naming it."""
        if self.decoding == "auto":
            return "crf" if all(_is_crf_tagger(est) for _, est in members) else "repair"
        not_crf = [name for name, est in members if not _is_crf_tagger(est)]
        if self.decoding == "crf" and not_crf:
            raise ValueError(f"{type(self).__name__}: decoding='crf' pools the members' CRFs, but members {not_crf} "
                             "are not CRF taggers (decoding='crf'). Give every member decoding='crf', or vote on "
                             "their mean probabilities with decoding='repair' or 'constrained'.")
        return self.decoding

    def _check_members(self, members):
        """Before any member trains: every member's own parameters, one tagging scheme for all (``y``
        is read once), and a warning for a decision rule the vote does not use."""
        for name, est in members:
            if is_classifier(est):  # one label per text: it would train on sentences as texts, then fail
                raise TypeError(f"{type(self).__name__}: member {name!r} ({type(est).__name__}) classifies texts, "
                                "not the words of sentences; vote taggers here (TransformerTokenClassifier), "
                                "text classifiers with sklearn.ensemble.VotingClassifier.")
            # fit's own checks of the parameters (a CRF member's refusals too), before any member trains;
            # the member's warnings come from its fit
            check = getattr(est, "_check_fit_params", None)
            try:
                if callable(check):
                    check(warn=False)
                elif callable(getattr(est, "_check_params", None)):
                    est._check_params()
            except (TypeError, ValueError) as error:  # named: the members may be of one class
                raise type(error)(f"{type(self).__name__}: member {name!r}: {error}") from None
        schemes = {name: est.get_params(deep=False).get("scheme", "IOB2") for name, est in members}
        if len({check_scheme(scheme, f"{name}__scheme") for name, scheme in schemes.items()}) > 1:  # aliases alike
            raise ValueError(f"{type(self).__name__}: the members read y in different tagging schemes ({schemes}); "
                             "give them all the scheme of y.")
        tuned = [name for name, est in members if est.get_params(deep=False).get("threshold") is not None]
        if tuned:
            warnings.warn(f"{type(self).__name__}: members {tuned} tune a decision rule (threshold) that the vote "
                          "ignores: it averages their probabilities, which leave the rule out. Set threshold=None "
                          "in the members.", UserWarning, stacklevel=3)

    def _check_member_data(self, members, X, y, sample_weight):
        """Before any member trains: each member's checks of the data, those its own fit runs before it
        loads the backbone (tags, ``class_weight`` keys, ``loss__`` values, ``head__k``, the validation
        split, ``sample_weight``), so that a later member's error leaves no earlier one trained."""
        from .._estimator import TransformerEstimator

        for name, est in members:
            if not isinstance(est, TransformerEstimator):  # another tagger checks its data in its own fit
                continue
            try:
                with warnings.catch_warnings():  # the member's warnings come from its fit
                    warnings.simplefilter("ignore", UserWarning)
                    est._check_data(X, y, sample_weight)
            except (TypeError, ValueError) as error:
                raise type(error)(f"{type(self).__name__}: member {name!r}: {error}") from None

    def _weighted_mean(self, X, method, what):
        """The weighted mean of the members' ``method(X)`` (``what`` they return, for errors): one
        float64 ``(n_words, n_tags)`` array per sentence."""
        lengths = [len(s) for s in X]
        total = np.zeros((sum(lengths), len(self.classes_)))
        for w, (name, est) in zip(self.weights_, self.named_estimators_.items()):
            scores = [np.asarray(p, dtype=float) for p in getattr(est, method)(X)]
            shapes = [p.shape for p in scores]
            if shapes != [(n, len(self.classes_)) for n in lengths]:
                raise ValueError(f"{type(self).__name__}: member {name!r} returned {what} of shapes {shapes[:3]}"
                                 f"...; expected one ({len(self.classes_)}-column) row per word of each sentence.")
            total += w * (np.concatenate(scores) if scores else 0.0)
        return np.split(total, np.cumsum(lengths)[:-1])

    def _pool(self, X):
        """The members' log-linear pool: their weighted mean emissions per sentence, and the weighted
        mean of their CRFs' ``transitions``, ``start`` and ``end`` (a CRF, as each member is)."""
        emissions = self._weighted_mean(X, "decision_function", "emissions")
        members = [_crf_scores(name, est) for name, est in self.named_estimators_.items()]
        scores = {k: sum(w * m[k] for w, m in zip(self.weights_, members)) for k in ("transitions", "start", "end")}
        return emissions, scores

    def _fitted_decoding(self, X):
        check_is_fitted(self, "estimators_")
        return check_token_lists(X), self._decoding(list(self.named_estimators_.items()))

    def predict_proba(self, X):
        """Per-word tag probabilities: one ``(n_words, n_tags)`` array per sentence (``(0, n_tags)``
        for an empty one). The members' weighted mean probabilities; under ``decoding="crf"``, each
        word's marginals under the members' pooled CRF (what :meth:`predict` decodes)."""
        X, decoding = self._fitted_decoding(X)
        if decoding == "crf":
            emissions, scores = self._pool(X)
            crf = _pooled_crf(self.classes_, scores)
            return [crf.marginals(e).astype(np.float32) for e in emissions]
        return [p.astype(np.float32) for p in self._weighted_mean(X, "predict_proba", "probabilities")]

    def decision_function(self, X):
        """What :meth:`predict` decodes, one ``(n_words, n_tags)`` array per sentence: under
        ``decoding="crf"`` the members' weighted mean emissions (their ``decision_function``), which
        it decodes with the weighted mean of their CRFs' transition, start and end scores; otherwise
        the log of :meth:`predict_proba`."""
        X, decoding = self._fitted_decoding(X)
        if decoding == "crf":
            return self._pool(X)[0]
        with np.errstate(divide="ignore"):
            return [np.log(p) for p in self.predict_proba(X)]

    def predict(self, X):
        """IOB2 tags: one list of ``len(X[i])`` tags per sentence."""
        X, decoding = self._fitted_decoding(X)
        if decoding == "crf":  # Viterbi of the pooled CRF: exact, as a CRF tagger's own predict
            emissions, scores = self._pool(X)
            return decode_tags(emissions, self.classes_, "constrained", **scores)
        return decode_tags(self.decision_function(X), self.classes_, decoding)

    def score(self, X, y, sample_weight=None):
        """Span-level micro-F1 of ``predict(X)`` against ``y`` (in the members' ``scheme``, one for
        all), seqeval strict IOB2, as :meth:`skimb.TransformerTokenClassifier.score`."""
        from .._token_task import check_tag_lengths, tags_to_iob2
        from ..metrics import span_f1_score

        if sample_weight is not None:
            raise ValueError("score does not take sample_weight: span F1 counts entities.")
        check_is_fitted(self, "estimators_")
        X = check_token_lists(X)
        truth = tags_to_iob2(y, self.estimators_[0].get_params(deep=False).get("scheme", "IOB2"))
        check_tag_lengths([len(s) for s in X], truth)  # before the members predict
        return float(span_f1_score(truth, self.predict(X), scheme="IOB2"))
