"""TunedOffsetsClassifier: any classifier's decision rule tuned for macro-F1 on a held-out split."""

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin, clone, is_classifier
from sklearn.ensemble import StackingClassifier, VotingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.model_selection import GridSearchCV
from sklearn.naive_bayes import GaussianNB
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from skimb.metrics import calibrated_logit_offsets, tune_logit_offsets
from skimb.model_selection import TunedOffsetsClassifier
from skimb.utils._param_validation import InvalidParameterError


def _points(seed, n=(600, 60, 30)):
    """Three overlapping Gaussian classes, the last two rare."""
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0], [1.2, 0.0], [0.0, 1.2]])
    X = np.concatenate([rng.normal(c, 1.0, (k, 2)) for c, k in zip(centres, n)])
    y = np.concatenate([np.full(k, label) for label, k in zip(("common", "rare", "rarest"), n)])
    return X, y


class _Recorder(ClassifierMixin, BaseEstimator):
    """Logistic regression that remembers what ``fit`` received."""

    def fit(self, X, y, sample_weight=None):
        self.n_fit_, self.sample_weight_ = len(X), sample_weight
        self.model_ = LogisticRegression().fit(X, y, sample_weight=sample_weight)
        self.classes_ = self.model_.classes_
        return self

    def predict_proba(self, X):
        return self.model_.predict_proba(X)


class _HoldsOut(ClassifierMixin, BaseEstimator):
    """Logistic regression that holds out a validation split of its own, as skimb's estimators do."""

    def __init__(self, validation_fraction=0.1, random_state=0):
        self.validation_fraction = validation_fraction
        self.random_state = random_state

    def fit(self, X, y):
        rng = np.random.RandomState(self.random_state)
        self.validation_indices_ = np.sort(rng.permutation(len(y))[:int(self.validation_fraction * len(y))])
        rows = np.setdiff1d(np.arange(len(y)), self.validation_indices_)
        self.n_fit_, self.model_ = len(y), LogisticRegression().fit(X[rows], y[rows])
        self.classes_ = self.model_.classes_
        return self

    def predict_proba(self, X):
        return self.model_.predict_proba(X)

    def predict(self, X):
        return self.model_.predict(X)


def test_offsets_raise_held_out_macro_f1_of_a_model_fit_for_accuracy():
    (X, y), (X_test, y_test) = _points(0), _points(1)
    plain = LogisticRegression().fit(X, y)
    tuned = TunedOffsetsClassifier(LogisticRegression(), random_state=0).fit(X, y)
    plain_f1 = f1_score(y_test, plain.predict(X_test), average="macro")
    tuned_f1 = f1_score(y_test, tuned.predict(X_test), average="macro")
    assert tuned_f1 > plain_f1 + 0.05
    # the rare classes are predicted more often than the plain argmax predicts them
    assert (tuned.predict(X_test) != "common").sum() > (plain.predict(X_test) != "common").sum()


def test_offsets_are_the_search_on_the_held_out_log_probabilities():
    X, y = _points(0)
    tuned = TunedOffsetsClassifier(LogisticRegression(), n_bootstrap=5, random_state=3).fit(X, y)
    valid = tuned.validation_indices_
    fitted = np.setdiff1d(np.arange(len(y)), valid)
    codes = np.searchsorted(tuned.classes_, y)
    expected = tune_logit_offsets(codes[valid], np.log(tuned.estimator_.predict_proba(X[valid])),
                                  class_prior=np.bincount(codes[fitted]) + 1.0, n_bootstrap=5, random_state=3)
    np.testing.assert_allclose(tuned.offsets_, expected)
    scores = np.log(tuned.estimator_.predict_proba(X)) + tuned.offsets_
    np.testing.assert_allclose(tuned.decision_function(X), scores)
    np.testing.assert_array_equal(tuned.predict(X), tuned.classes_[scores.argmax(1)])
    np.testing.assert_allclose(tuned.predict_proba(X), tuned.estimator_.predict_proba(X))


@pytest.mark.parametrize("tau", [0.0, 0.25, 1.0])
def test_calibrated_search_is_the_calibrated_rule_with_its_tau(tau):
    X, y = _points(0)
    fitted = TunedOffsetsClassifier(LogisticRegression(), search="calibrated", tau=tau, random_state=3).fit(X, y)
    valid = fitted.validation_indices_
    train = np.setdiff1d(np.arange(len(y)), valid)
    codes = np.searchsorted(fitted.classes_, y)
    expected = calibrated_logit_offsets(codes[valid], np.log(fitted.estimator_.predict_proba(X[valid])),
                                        class_prior=np.bincount(codes[train]) + 1.0, tau=tau)
    np.testing.assert_allclose(fitted.offsets_, expected)


def test_calibrated_search_shifts_towards_the_rare_classes_as_tau_grows():
    (X, y), (X_test, _) = _points(0), _points(1)
    rare = [(TunedOffsetsClassifier(LogisticRegression(), search="calibrated", tau=tau, random_state=0)
             .fit(X, y).predict(X_test) != "common").sum() for tau in (0.0, 0.5, 1.0)]
    assert rare[0] < rare[1] < rare[2]


def test_the_calibrated_estimator_rule_is_the_calibrated_search_around_it(tiny_bert, toy_data):
    """TransformerClassifier(threshold="calibrated") is this search with tau 0.25 on its own split."""
    from skimb import TransformerClassifier

    X, y = toy_data
    common = dict(backbone=tiny_bert, max_epochs=2, batch_size=8, validation_fraction=0.25, class_weight="balanced",
                  random_state=0)
    own = TransformerClassifier(threshold="calibrated", **common).fit(X, y)
    wrapped = TunedOffsetsClassifier(TransformerClassifier(**common), validation="estimator",
                                     search="calibrated").fit(X, y)
    np.testing.assert_allclose(wrapped.offsets_, own.logit_offsets_, atol=2e-3)
    np.testing.assert_array_equal(wrapped.predict(X), own.predict(X))


def test_parameters_the_search_ignores_are_named():
    import warnings

    X, y = _points(0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the defaults, and tau where it is used, say nothing
        TunedOffsetsClassifier(LogisticRegression(), n_bootstrap=0).fit(X, y)
        TunedOffsetsClassifier(LogisticRegression(), search="calibrated", tau=0.5).fit(X, y)
    with pytest.warns(UserWarning, match="tau is ignored: only search='calibrated' uses it"):
        TunedOffsetsClassifier(LogisticRegression(), tau=0.5, n_bootstrap=0).fit(X, y)
    with pytest.warns(UserWarning, match="n_bootstrap is ignored: search='calibrated' fits the whole split once"):
        TunedOffsetsClassifier(LogisticRegression(), search="calibrated", n_bootstrap=5).fit(X, y)


def test_held_out_split_is_stratified_and_kept_out_of_the_fit():
    X, y = _points(0)
    tuned = TunedOffsetsClassifier(_Recorder(), validation_fraction=0.2, random_state=0).fit(X, y)
    valid = tuned.validation_indices_
    assert len(valid) == round(0.2 * len(y)) and tuned.estimator_.n_fit_ == len(y) - len(valid)
    for label, n in zip(("common", "rare", "rarest"), (600, 60, 30)):
        assert (y[valid] == label).sum() == 0.2 * n


def test_a_small_y_holds_out_one_example_of_each_class_at_least():
    X, y = _points(0, n=(10, 3, 2))
    tuned = TunedOffsetsClassifier(LogisticRegression(), validation_fraction=0.05, random_state=0).fit(X, y)
    assert sorted(set(y[tuned.validation_indices_])) == ["common", "rare", "rarest"]


def test_a_half_example_share_rounds_up_for_every_class():
    X, y = _points(0, n=(25, 15, 5))  # 10%: 2.5, 1.5 and 0.5 examples
    tuned = TunedOffsetsClassifier(LogisticRegression(), validation_fraction=0.1, random_state=0).fit(X, y)
    held = y[tuned.validation_indices_]
    assert [(held == label).sum() for label in ("common", "rare", "rarest")] == [3, 2, 1]


def test_same_seed_same_model_other_seed_other_split():
    X, y = _points(0)
    a, b, c = (TunedOffsetsClassifier(LogisticRegression(), random_state=s).fit(X, y) for s in (0, 0, 1))
    np.testing.assert_array_equal(a.offsets_, b.offsets_)
    np.testing.assert_array_equal(a.validation_indices_, b.validation_indices_)
    assert not np.array_equal(a.validation_indices_, c.validation_indices_)


def test_sample_weight_reaches_the_estimator_for_the_fitted_part_only():
    X, y = _points(0)
    w = np.arange(1.0, len(y) + 1)
    tuned = TunedOffsetsClassifier(_Recorder(), random_state=0).fit(X, y, sample_weight=w)
    fitted = np.setdiff1d(np.arange(len(y)), tuned.validation_indices_)
    np.testing.assert_array_equal(tuned.estimator_.sample_weight_, w[fitted])


def test_tau_search_keeps_the_logit_adjustment_rule():
    X, y = _points(0)
    tuned = TunedOffsetsClassifier(LogisticRegression(), search="tau", random_state=0, n_bootstrap=0).fit(X, y)
    fitted = np.setdiff1d(np.arange(len(y)), tuned.validation_indices_)
    log_prior = np.log(np.unique(y[fitted], return_counts=True)[1] + 1.0)
    log_prior -= log_prior.mean()
    tau = -tuned.offsets_[0] / log_prior[0]
    assert tau > 0 and np.isclose(tau, np.arange(0, 2.01, 0.25)).any()
    np.testing.assert_allclose(tuned.offsets_, -tau * log_prior)


def test_wraps_a_soft_vote_and_routes_search_parameters():
    X, y = _points(0)
    vote = VotingClassifier([("lr", LogisticRegression()), ("nb", GaussianNB())], voting="soft")
    tuned = TunedOffsetsClassifier(vote, random_state=0)
    assert tuned.get_params()["estimator__lr__C"] == 1.0
    search = GridSearchCV(tuned, {"estimator__lr__C": [0.1, 1.0], "search": ["tau", "offsets"]},
                          scoring="f1_macro", cv=3).fit(X, y)
    assert search.best_estimator_.classes_.tolist() == ["common", "rare", "rarest"]
    assert set(search.predict(X)) <= set(y)


def test_refit_replaces_the_earlier_fit():
    X, y = _points(0)
    tuned = TunedOffsetsClassifier(LogisticRegression(), random_state=0).fit(X, y)
    first = tuned.estimator_
    tuned.fit(X[y != "rarest"], y[y != "rarest"])
    assert tuned.estimator_ is not first and tuned.classes_.tolist() == ["common", "rare"]
    assert tuned.offsets_.shape == (2,) and tuned.validation_indices_.max() < (y != "rarest").sum()
    assert clone(tuned).get_params()["random_state"] == 0 and not hasattr(clone(tuned), "offsets_")


@pytest.mark.parametrize("y_change, message", [
    (lambda y: np.full(len(y), "common"), "at least 2 classes"),
    (lambda y: np.append(y[:-1], "unique"), r"class\(es\) \['unique'\] have 1"),
    (lambda y: np.stack([y == "rare", y == "rarest"], 1).astype(int), "single-label"),
    (lambda y: y[:-1], "different lengths"),
], ids=["one-class", "singleton-class", "multilabel", "lengths"])
def test_bad_targets_are_refused_before_any_fit(y_change, message):
    X, y = _points(0)
    tuned = TunedOffsetsClassifier(_Recorder())
    with pytest.raises(ValueError, match=message):
        tuned.fit(X, y_change(y))
    assert not hasattr(tuned, "estimator_")


def test_an_estimator_without_probabilities_is_refused_with_its_remedy():
    X, y = _points(0)
    with pytest.raises(InvalidParameterError, match="estimator must be an object with fit.. and predict_proba"):
        TunedOffsetsClassifier(LinearSVC()).fit(X, y)


def test_estimator_validation_tunes_on_the_split_the_estimator_held_out():
    X, y = _points(0)
    tuned = TunedOffsetsClassifier(_HoldsOut(0.2), validation="estimator", n_bootstrap=5, random_state=3).fit(X, y)
    valid = tuned.estimator_.validation_indices_
    assert tuned.estimator_.n_fit_ == len(y)  # fitted on everything: nothing held out twice
    np.testing.assert_array_equal(tuned.validation_indices_, valid)
    codes = np.searchsorted(tuned.classes_, y)
    fitted = np.setdiff1d(np.arange(len(y)), valid)
    expected = tune_logit_offsets(codes[valid], np.log(tuned.estimator_.predict_proba(X[valid])),
                                  class_prior=np.bincount(codes[fitted]) + 1.0, n_bootstrap=5, random_state=3)
    np.testing.assert_allclose(tuned.offsets_, expected)


def test_estimator_validation_needs_every_member_to_hold_out_the_same_split():
    X, y = _points(0)
    same = VotingClassifier([("a", _HoldsOut()), ("b", _HoldsOut())], voting="soft")
    tuned = TunedOffsetsClassifier(same, validation="estimator").fit(X, y)
    np.testing.assert_array_equal(tuned.validation_indices_, tuned.estimator_.named_estimators_["a"].validation_indices_)
    other = VotingClassifier([("a", _HoldsOut()), ("b", _HoldsOut(random_state=1))], voting="soft")
    with pytest.raises(ValueError, match=r"\['a'\] and .*\['b'\] held out different validation splits"):
        TunedOffsetsClassifier(other, validation="estimator").fit(X, y)
    plain = VotingClassifier([("a", _HoldsOut()), ("lr", LogisticRegression())], voting="soft")
    with pytest.raises(ValueError, match=r"but VotingClassifier\['lr'\] held out none: give every skimb estimator"):
        TunedOffsetsClassifier(plain, validation="estimator").fit(X, y)


def test_estimator_validation_refuses_a_stack_whose_final_estimator_saw_every_row():
    X, y = _points(0)
    stack = StackingClassifier([("a", _HoldsOut()), ("b", _HoldsOut())], final_estimator=LogisticRegression())
    with pytest.raises(ValueError, match=r"but StackingClassifier\.final_estimator_ held out none"):
        TunedOffsetsClassifier(stack, validation="estimator").fit(X, y)


def test_estimator_validation_finds_the_split_inside_a_pipeline():
    X, y = _points(0)
    piped = TunedOffsetsClassifier(make_pipeline(StandardScaler(), _HoldsOut()), validation="estimator").fit(X, y)
    np.testing.assert_array_equal(piped.validation_indices_, piped.estimator_[-1].validation_indices_)
    with pytest.raises(ValueError, match=r"but Pipeline\['logisticregression'\] held out none"):
        TunedOffsetsClassifier(make_pipeline(StandardScaler(), LogisticRegression()), validation="estimator").fit(X, y)


def test_estimator_validation_finds_the_split_of_a_searchs_best_estimator():
    # the remedy the hold-out warning gives around a search must work: its refitted best_estimator_ holds out the split
    X, y = _points(0)
    search = GridSearchCV(_HoldsOut(), {"validation_fraction": [0.1, 0.2]}, cv=2)
    with pytest.warns(UserWarning, match="use validation='estimator' to tune on its split instead"):
        TunedOffsetsClassifier(search, random_state=0, n_bootstrap=5).fit(X, y)
    tuned = TunedOffsetsClassifier(search, validation="estimator", n_bootstrap=5).fit(X, y)
    np.testing.assert_array_equal(tuned.validation_indices_, tuned.estimator_.best_estimator_.validation_indices_)


def test_estimator_validation_refuses_a_sampler_before_the_estimator():
    # its split would index the resampled rows, not X: refused before anything is fitted
    from imblearn.over_sampling import RandomOverSampler
    from imblearn.pipeline import make_pipeline as make_imb_pipeline

    class MustNotFit(_HoldsOut):
        def fit(self, X, y):
            raise AssertionError("fitted before the refusal")

    X, y = _points(0)
    piped = make_imb_pipeline(RandomOverSampler(random_state=0), MustNotFit())
    for wrapped in (piped, VotingClassifier([("p", piped)], voting="soft")):
        with pytest.raises(ValueError, match=r"(Pipeline|\['p'\])\['randomoversampler'\] resamples the rows before it"):
            TunedOffsetsClassifier(wrapped, validation="estimator").fit(X, y)
    # the remedy, which names the estimator's own split as the one to drop
    piped = make_imb_pipeline(RandomOverSampler(random_state=0), _HoldsOut())
    with pytest.warns(UserWarning, match=r"set its validation_fraction=None, turning off what reads that split "
                                        r"\(early_stopping, a tuned threshold\); with a sampler before it"):
        tuned = TunedOffsetsClassifier(piped, validation="hold_out", n_bootstrap=5).fit(X, y)
    assert tuned.predict(X).shape == y.shape


def test_estimator_validation_warns_that_its_own_fraction_is_ignored():
    X, y = _points(0)
    with pytest.warns(UserWarning, match="validation_fraction=0.2 is ignored with validation='estimator'"):
        TunedOffsetsClassifier(_HoldsOut(), validation="estimator", validation_fraction=0.2).fit(X, y)


def test_a_vote_of_fine_tuned_classifiers_shares_their_validation_split(tiny_bert, toy_data):
    from skimb import TransformerClassifier

    X, y = toy_data
    common = dict(backbone=tiny_bert, max_epochs=1, batch_size=8, validation_fraction=0.25, random_state=0)
    vote = VotingClassifier([("ce", TransformerClassifier(**common)),
                             ("weighted_ce", TransformerClassifier(class_weight="balanced", **common))], voting="soft")
    tuned = TunedOffsetsClassifier(vote, validation="estimator", random_state=0).fit(X, y)
    member = tuned.estimator_.named_estimators_["ce"]
    assert len(tuned.validation_indices_) == round(0.25 * len(y))
    np.testing.assert_array_equal(tuned.validation_indices_, member.validation_indices_)
    assert member.class_counts_.sum() == len(y) - len(tuned.validation_indices_)  # trained on the rest only
    assert set(tuned.predict(X)) <= set(y)
    member.set_params(validation_fraction=None).fit(X, y)  # a refit without a split keeps none of the first
    assert not hasattr(member, "validation_indices_")


def test_a_failed_refit_leaves_no_model_of_the_earlier_fit():
    from sklearn.exceptions import NotFittedError

    X, y = _points(0)
    tuned = TunedOffsetsClassifier(LogisticRegression(), random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="have 1"):
        tuned.fit(X, np.append(y[:-1], "unique"))
    assert not hasattr(tuned, "offsets_")
    with pytest.raises(NotFittedError):
        tuned.predict(X)


def test_sparse_rows_and_a_generator_of_texts():
    import scipy.sparse as sp
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import make_pipeline

    from skimb.utils.estimator_checks import make_check_texts

    X, y = _points(0)
    sparse = TunedOffsetsClassifier(LogisticRegression(), random_state=0).fit(sp.csr_matrix(X), y)
    dense = TunedOffsetsClassifier(LogisticRegression(), random_state=0).fit(X, y)
    np.testing.assert_allclose(sparse.offsets_, dense.offsets_)
    texts, labels = make_check_texts()
    model = TunedOffsetsClassifier(make_pipeline(TfidfVectorizer(), LogisticRegression()), random_state=0)
    model.fit((t for t in texts), labels)
    assert len(model.validation_indices_) == 2 + 1 + 1 and set(model.predict(texts)) <= set(labels)  # 10% of 16, 8, 6


def test_two_classes_give_one_decision_score_as_scikit_learns_scorers_expect():
    from sklearn.model_selection import cross_val_score

    X, y = _points(0, n=(600, 60, 0))
    tuned = TunedOffsetsClassifier(LogisticRegression(), random_state=0).fit(X, y)
    scores = tuned.decision_function(X)
    assert scores.shape == (len(y),)
    np.testing.assert_array_equal(tuned.predict(X), tuned.classes_[(scores > 0).astype(int)])
    assert cross_val_score(tuned, X, y, scoring="roc_auc", cv=3).min() > 0.7


def test_holding_out_around_an_estimator_that_holds_out_warns():
    X, y = _points(0)
    with pytest.warns(UserWarning, match="holds out a validation split of its own"):
        TunedOffsetsClassifier(_HoldsOut(), random_state=0).fit(X, y)


def test_any_input_the_estimator_takes_goes_to_it_unchanged():
    # a list of dicts (a DictVectorizer pipeline) is no list of texts: it reaches the estimator as given
    from sklearn.feature_extraction import DictVectorizer

    X, y = _points(0)
    dicts = [{"f": a, "g": b} for a, b in X]
    tuned = TunedOffsetsClassifier(make_pipeline(DictVectorizer(sparse=False), LogisticRegression()), random_state=0)
    tuned.fit((d for d in dicts), y)  # a generator is read once, into a list
    plain = TunedOffsetsClassifier(LogisticRegression(), random_state=0).fit(X, y)
    np.testing.assert_array_equal(tuned.validation_indices_, plain.validation_indices_)
    np.testing.assert_allclose(tuned.offsets_, plain.offsets_)
    np.testing.assert_array_equal(tuned.predict(dicts), plain.predict(X))
    with pytest.raises(ValueError, match="Expected 2D array, got 1D array"):  # the estimator's own check
        TunedOffsetsClassifier(LogisticRegression()).fit(X[:, 0], y)


def test_an_array_like_known_only_by_its_array_method():
    from sklearn.utils.estimator_checks import _NotAnArray

    X, y = _points(0)
    tuned = TunedOffsetsClassifier(LogisticRegression(), random_state=0).fit(_NotAnArray(X), _NotAnArray(y))
    plain = TunedOffsetsClassifier(LogisticRegression(), random_state=0).fit(X, y)
    np.testing.assert_allclose(tuned.offsets_, plain.offsets_)
    np.testing.assert_array_equal(tuned.classes_, plain.classes_)


@pytest.mark.parametrize("fmt", ["coo", "dia", "bsr", "csc"])
@pytest.mark.filterwarnings("ignore::scipy.sparse.SparseEfficiencyWarning")  # DIA for random data: slow, not wrong
def test_every_sparse_format_the_estimator_takes(fmt):
    import scipy.sparse as sp

    X, y = _points(0)
    tuned = TunedOffsetsClassifier(LogisticRegression(), random_state=0).fit(sp.csr_matrix(X).asformat(fmt), y)
    dense = TunedOffsetsClassifier(LogisticRegression(), random_state=0).fit(X, y)
    np.testing.assert_allclose(tuned.offsets_, dense.offsets_)


def test_input_tags_and_feature_attributes_are_the_wrapped_estimators():
    pd = pytest.importorskip("pandas")
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.utils import get_tags

    for inner in (LogisticRegression(), HistGradientBoostingClassifier(),
                  make_pipeline(TfidfVectorizer(), LogisticRegression())):
        assert get_tags(TunedOffsetsClassifier(inner)).input_tags == get_tags(inner).input_tags
    assert get_tags(TunedOffsetsClassifier(LogisticRegression())).input_tags.sparse  # it fits sparse X
    assert get_tags(TunedOffsetsClassifier(HistGradientBoostingClassifier())).input_tags.allow_nan
    # a value that is no estimator is refused at fit, not when scikit-learn asks for the tags before it
    assert is_classifier(TunedOffsetsClassifier("not-an-estimator"))
    assert get_tags(TunedOffsetsClassifier(None)).input_tags == get_tags(TunedOffsetsClassifier(_Recorder())).input_tags

    X, y = _points(0)
    tuned = TunedOffsetsClassifier(LogisticRegression(), random_state=0)
    assert not hasattr(tuned, "n_features_in_") and not hasattr(tuned, "feature_names_in_")  # before fit
    tuned.fit(X, y)
    assert tuned.n_features_in_ == 2 and not hasattr(tuned, "feature_names_in_")  # no column names
    with pytest.raises(AttributeError, match="TunedOffsetsClassifier has no feature_names_in_: it is the fitted "
                                             "estimator_'s, which has none"):
        tuned.feature_names_in_
    tuned.fit(pd.DataFrame(X, columns=["width", "height"]), y)
    assert tuned.feature_names_in_.tolist() == ["width", "height"]
    texts, labels = _texts_and_labels()
    text_model = TunedOffsetsClassifier(make_pipeline(TfidfVectorizer(), LogisticRegression()), random_state=0)
    assert not hasattr(text_model.fit(texts, labels), "n_features_in_")  # texts have no features


def _texts_and_labels():
    from skimb.utils.estimator_checks import make_check_texts

    return make_check_texts()


def test_missing_texts_are_named_by_position_pandas_na_included():
    pd = pytest.importorskip("pandas")
    from sklearn.feature_extraction.text import TfidfVectorizer

    texts, labels = _texts_and_labels()
    model = TunedOffsetsClassifier(make_pipeline(TfidfVectorizer(), LogisticRegression()))
    for missing, name in ((None, "None"), (float("nan"), "NaN"), (pd.NA, "pd.NA")):
        holed = pd.Series([*texts[:3], missing, *texts[4:]], dtype="string" if missing is pd.NA else object)
        with pytest.raises(TypeError, match=rf"X\[3\] is {name}; every element of X must be a string"):
            model.fit(holed, labels)
    with pytest.raises(TypeError, match=r"X\[0\] is None"):  # nothing but missing values: texts none the less
        model.fit([None] * len(labels), labels)


def test_no_y_and_all_zero_weights_are_refused_with_the_remedy():
    X, y = _points(0)
    tuned = TunedOffsetsClassifier(_Recorder())
    with pytest.raises(ValueError, match="TunedOffsetsClassifier requires y to be passed, but the target y is None: "
                                         "pass the labels, one per sample of X"):
        tuned.fit(X, None)
    with pytest.raises(ValueError, match=r"sample_weight sums to 0 \(every weight is zero\): nothing to learn from; "
                                         "give some samples a positive weight"):
        tuned.fit(X, y, sample_weight=np.zeros(len(y)))
    assert not hasattr(tuned, "estimator_")


def test_scikit_learns_checks_pass_but_where_the_decision_rule_is_meant_to_differ():
    from sklearn.utils.estimator_checks import check_estimator

    by_design = {
        # as for scikit-learn's own TunedThresholdClassifierCV: predict applies the offsets, predict_proba not
        "check_classifiers_train": "predict is the argmax of the offset log-probabilities, not of predict_proba",
        # the held-out split depends on the rows: a repeated row and a doubled weight are split differently
        "check_sample_weight_equivalence_on_dense_data": "the held-out split depends on the rows",
        "check_sample_weight_equivalence_on_sparse_data": "the held-out split depends on the rows",
        # skimb reads a one-column y as labels without a warning, as all its estimators do
        "check_supervised_y_2d": "a one-column y is read as labels silently",
    }
    results = check_estimator(TunedOffsetsClassifier(LogisticRegression(), random_state=0),
                              expected_failed_checks=by_design, on_fail=None)
    failed = {r["check_name"] for r in results if r["status"] == "failed"}
    assert not failed, failed


def test_a_pairwise_estimators_tag_is_not_claimed():
    from sklearn.svm import SVC
    from sklearn.utils import get_tags

    svc = SVC(kernel="precomputed", probability=True)
    assert get_tags(svc).input_tags.pairwise
    assert not get_tags(TunedOffsetsClassifier(svc)).input_tags.pairwise
    assert get_tags(svc).input_tags.pairwise  # the estimator's own tags untouched
