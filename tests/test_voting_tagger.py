"""VotingTagger: the soft vote of taggers (mean per-word tag probabilities, decoded to IOB2), and the
log-linear pool of CRF taggers (mean emissions and CRF scores, Viterbi)."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
import torch
from conftest import make_ner
from sklearn.base import BaseEstimator, clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, KFold

from skimb import TransformerTokenClassifier
from skimb.ensemble import VotingTagger
from skimb.metrics import span_f1_score
from skimb.tokens import LinearChainCRF, decode_tags, validate_tags
from skimb.utils._meta import inner_estimators

FAST = dict(max_epochs=2, batch_size=8, random_state=0, max_length=32, lr=5e-3)
TAGS = np.array(["O", "B-PER", "I-PER"])


class _FixedTagger(BaseEstimator):
    """Gives every word the probabilities ``proba`` (shifted towards ``B-PER`` by ``bias``) and
    records what ``fit`` received."""

    def __init__(self, proba=(1.0, 0.0, 0.0), bias=0.0, tags=("O", "B-PER", "I-PER")):
        self.proba = proba
        self.bias = bias
        self.tags = tags

    def fit(self, X, y, sample_weight=None):
        self.classes_ = np.asarray(self.tags)
        self.fit_sample_weight_ = sample_weight
        self.fit_X_ = X
        return self

    def predict_proba(self, X):
        p = np.asarray(self.proba, dtype=np.float32) + np.array([0.0, self.bias, 0.0], dtype=np.float32)
        p = p / p.sum()
        return [np.tile(p, (len(s), 1)) for s in X]


class _RowTagger(_FixedTagger):
    """Gives the words of a sentence the rows of ``rows`` in turn."""

    def __init__(self, rows=((1.0, 0.0, 0.0),), tags=("O", "B-PER", "I-PER"), scheme="IOB2", threshold=None,
                 fail=False):
        super().__init__(tags=tags)
        self.rows = rows
        self.scheme = scheme
        self.threshold = threshold
        self.fail = fail

    fits = 0  # every fit of any instance, so that a test can tell whether training began

    def fit(self, X, y, sample_weight=None):
        type(self).fits += 1
        if self.fail:
            raise RuntimeError("training failed")
        return super().fit(X, y, sample_weight)

    def predict_proba(self, X):
        rows = np.asarray(self.rows, dtype=np.float32)
        return [rows[np.arange(len(s)) % len(rows)] for s in X]


class _InterruptedTagger(_RowTagger):
    """Interrupted in training: keeps a usable model and says so (``"flag"``, as
    TransformerTokenClassifier does), or lets the ``KeyboardInterrupt`` through (``"raise"``)."""

    def __init__(self, how="flag"):
        super().__init__()
        self.how = how

    def fit(self, X, y, sample_weight=None):
        super().fit(X, y, sample_weight)
        if self.how == "raise":
            raise KeyboardInterrupt
        self.training_interrupted_ = True
        return self


X_TOY = [["john", "smith", "runs"], [], ["mary"]]
Y_TOY = [["B-PER", "I-PER", "O"], [], ["B-PER"]]


def test_the_vote_can_choose_a_tag_that_no_member_chooses():
    # each member's argmax is O and I-PER; their mean's is B-PER
    vote = VotingTagger([("a", _FixedTagger((0.6, 0.4, 0.0))), ("b", _FixedTagger((0.0, 0.4, 0.6)))]).fit(X_TOY, Y_TOY)
    proba = vote.predict_proba(X_TOY)
    assert [p.shape for p in proba] == [(3, 3), (0, 3), (1, 3)]
    np.testing.assert_allclose(proba[0], [[0.3, 0.4, 0.3]] * 3, rtol=1e-6)
    assert vote.predict(X_TOY) == [["B-PER", "B-PER", "B-PER"], [], ["B-PER"]]
    assert vote.classes_.tolist() == TAGS.tolist() and vote.entity_types_ == ["PER"]


def test_weights():
    members = [("a", _FixedTagger((0.6, 0.4, 0.0))), ("b", _FixedTagger((0.0, 0.4, 0.6)))]
    heavy_b = VotingTagger(members, weights=[1, 3]).fit(X_TOY, Y_TOY)
    np.testing.assert_allclose(heavy_b.predict_proba(X_TOY)[2], [[0.15, 0.4, 0.45]], rtol=1e-6)
    np.testing.assert_allclose(heavy_b.weights_, [0.25, 0.75])
    only_a = VotingTagger(members, weights=[1, 0]).fit(X_TOY, Y_TOY)
    assert only_a.predict(X_TOY) == [["O", "O", "O"], [], ["O"]]
    only_a.set_params(weights=[1])  # takes effect at the next fit (and is checked there), not in between
    assert only_a.predict(X_TOY) == [["O", "O", "O"], [], ["O"]]
    with pytest.raises(ValueError, match="one entry per estimator"):
        only_a.fit(X_TOY, Y_TOY)


def test_decoding_repairs_or_decodes_valid_paths_from_the_mean():
    # both members: I-PER (0.7) then O (0.5) for a sentence of two words
    rows = ((0.2, 0.1, 0.7), (0.5, 0.4, 0.1))
    vote = VotingTagger([("a", _RowTagger(rows)), ("b", _RowTagger(rows))]).fit(X_TOY, Y_TOY)
    assert vote.predict([["x", "y"]]) == [["B-PER", "O"]]  # the I-PER read as B-PER
    assert vote.set_params(decoding="constrained").predict([["x", "y"]]) == [["O", "O"]]  # 0.2 x 0.5 > 0.1 x 0.5


def test_a_member_with_a_wrong_probability_shape_is_named():
    vote = VotingTagger([("a", _FixedTagger()), ("b", _RowTagger(((0.5, 0.5),)))]).fit(X_TOY, Y_TOY)
    with pytest.raises(ValueError, match=r"member 'b' returned probabilities of shapes \[\(3, 2\)"):
        vote.predict_proba(X_TOY)


def test_members_are_cloned_fitted_on_the_same_data_with_sample_weight():
    template = _FixedTagger()
    vote = VotingTagger([("a", template), ("b", _FixedTagger())])
    w = np.array([1.0, 2.0, 3.0])
    vote.fit(X_TOY, Y_TOY, sample_weight=w)
    assert not hasattr(template, "classes_")  # the parameter is never fitted in place
    assert list(vote.named_estimators_) == ["a", "b"] and vote.estimators_[0] is vote.named_estimators_.a
    for member in vote.estimators_:
        assert member.fit_X_ == X_TOY and member.fit_sample_weight_ is w
    assert vote.fit(X_TOY, Y_TOY).estimators_[0].fit_sample_weight_ is None


def test_members_with_different_tags_are_an_error_and_a_failed_refit_keeps_no_earlier_model():
    vote = VotingTagger([("a", _FixedTagger()), ("b", _FixedTagger())]).fit(X_TOY, Y_TOY)
    vote.set_params(b=_FixedTagger(tags=("O", "B-LOC", "I-LOC")))
    with pytest.raises(ValueError, match=r"'a' and 'b' learned different tags"):
        vote.fit(X_TOY, Y_TOY)
    assert not any(hasattr(vote, a) for a in ("estimators_", "classes_", "weights_"))
    vote = VotingTagger([("a", _FixedTagger())]).fit(X_TOY, Y_TOY)
    with pytest.raises(RuntimeError, match="training failed"):
        vote.set_params(a=_RowTagger(fail=True)).fit(X_TOY, Y_TOY)
    assert not hasattr(vote, "estimators_")


def test_members_must_read_y_in_one_scheme_before_any_trains():
    before = _RowTagger.fits
    vote = VotingTagger([("a", _RowTagger()), ("b", _RowTagger(scheme="IOBES"))])
    with pytest.raises(ValueError, match=r"different tagging schemes \(\{'a': 'IOB2', 'b': 'IOBES'\}\)"):
        vote.fit(X_TOY, Y_TOY)
    assert _RowTagger.fits == before


def test_scheme_aliases_are_one_scheme():  # "BIO" and "IOB2" were refused as two schemes
    VotingTagger([("a", _RowTagger(scheme="BIO")), ("b", _RowTagger(scheme="iob2"))]).fit(X_TOY, Y_TOY)
    before = _RowTagger.fits
    with pytest.raises(ValueError, match="Unknown b__scheme 'BIOLU'"):
        VotingTagger([("a", _RowTagger()), ("b", _RowTagger(scheme="BIOLU"))]).fit(X_TOY, Y_TOY)
    assert _RowTagger.fits == before


def test_a_text_classifier_member_is_refused_before_any_trains(tiny_bert):
    from skimb import TransformerClassifier

    before = _RowTagger.fits
    with pytest.raises(TypeError, match=r"member 'b' \(TransformerClassifier\) classifies texts, not the words"):
        VotingTagger([("a", _RowTagger()), ("b", TransformerClassifier(tiny_bert))]).fit(X_TOY, Y_TOY)
    assert _RowTagger.fits == before


def test_score_names_the_sentence_and_the_tag_as_the_tagger_does():
    vote = VotingTagger([("a", _RowTagger())]).fit(X_TOY, Y_TOY)
    with pytest.raises(ValueError, match=r"sentence 0: X\[0\] has 3 tokens but y\[0\] has 2 tags"):
        vote.score(X_TOY, [["B-PER", "O"], [], ["O"]])
    with pytest.raises(ValueError, match=r"X and y have different lengths: 3 sentences != 2"):
        vote.score(X_TOY, Y_TOY[:2])
    with pytest.raises(ValueError, match=r"^y: sentence 0, position 0: y\[0\]\[0\] = 'PER'"):
        vote.score(X_TOY[:1], [["PER", "O", "O"]])


def test_a_tuned_decision_rule_of_a_member_is_reported_as_ignored():
    vote = VotingTagger([("a", _RowTagger()), ("b", _RowTagger(threshold="tuned"))])
    with pytest.warns(UserWarning, match=r"members \['b'\] tune a decision rule \(threshold\) that the vote ignores"):
        vote.fit(X_TOY, Y_TOY)


@pytest.mark.parametrize("estimators, message", [
    ([("a", _FixedTagger()), ("a", _FixedTagger())], "distinct names"),
    ([("a__b", _FixedTagger())], "without '__'"),
    ([("weights", _FixedTagger())], "not 'estimators', 'weights' or 'decoding'"),
    ([("a", object())], r"get_params\(\), fit\(\) and predict_proba\(\)"),
    ([], "non-empty list"),
])
def test_bad_members_are_reported_before_any_fit(estimators, message):
    with pytest.raises(ValueError, match=message) as info:
        VotingTagger(estimators).fit(X_TOY, Y_TOY)
    assert "VotingTagger: estimators" in str(info.value)


def test_weights_need_one_per_member_and_member_parameters_are_checked_before_training(tiny_bert):
    vote = VotingTagger([("a", _FixedTagger()), ("b", _FixedTagger())], weights=[1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match=r"one entry per estimator \(2\), got \[1.0, 2.0, 3.0\]"):
        vote.fit(X_TOY, Y_TOY)
    # the second member's bad parameter stops the fit before the first member trains
    before = _RowTagger.fits
    vote = VotingTagger([("ok", _RowTagger()), ("bad", TransformerTokenClassifier(tiny_bert, head="calora", head__k=0))])
    with pytest.raises(ValueError, match="head__k must be an int"):
        vote.fit(X_TOY, Y_TOY)
    assert _RowTagger.fits == before and not hasattr(vote, "estimators_")


def test_tags_and_weights_given_as_generators_reach_every_member(tiny_bert):
    # a tagger fits on a generator of tag lists; the vote told "member 'b': X and y have different
    # lengths: 16 sentences != 0", the first member's checks having used the generator up
    X, y = make_ner(16)
    members = [(name, TransformerTokenClassifier(tiny_bert, **dict(FAST, max_epochs=1))) for name in ("a", "b")]
    vote = VotingTagger(members).fit(X, (tags for tags in y), sample_weight=(1.0 for _ in X))
    assert vote.classes_.tolist() == ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
    assert [len(p) for p in vote.predict(X)] == [len(s) for s in X]


def test_bad_sentences_are_reported_before_any_fit():
    template = _FixedTagger()
    with pytest.raises(TypeError, match=r"X\[0\]\[1\] must be a string token"):
        VotingTagger([("a", template)]).fit([["john", 3]], [["B-PER", "O"]])


def test_nested_parameters_and_replacing_a_member():
    vote = VotingTagger([("a", _FixedTagger()), ("b", _FixedTagger())])
    params = vote.get_params()
    assert params["a"] is vote.estimators[0][1] and params["b__bias"] == 0.0
    assert "a" not in vote.get_params(deep=False)
    vote.set_params(b__bias=0.5)
    assert vote.estimators[1][1].bias == 0.5
    replacement = _FixedTagger(bias=2.0)
    vote.set_params(a=replacement, decoding="constrained")
    assert vote.estimators[0][1] is replacement and vote.decoding == "constrained"
    assert clone(vote).get_params()["a__bias"] == 2.0


def test_a_search_reaches_a_member_parameter():
    X = [["john", "runs"]] * 6 + [["rain", "falls"]] * 6
    y = [["B-PER", "O"]] * 6 + [["O", "O"]] * 6
    vote = VotingTagger([("a", _FixedTagger((0.5, 0.0, 0.5))), ("b", _FixedTagger((0.5, 0.0, 0.5)))])
    search = GridSearchCV(vote, {"b__bias": [0.0, 3.0]}, cv=KFold(2)).fit(X, y)
    # with a bias of 3 member b says B-PER for every word: half the spans right, instead of none
    assert search.best_params_ == {"b__bias": 3.0}
    assert search.best_estimator_.named_estimators_.b.bias == 3.0


def test_refit_keeps_nothing_of_the_earlier_members():
    vote = VotingTagger([("a", _FixedTagger()), ("b", _FixedTagger())]).fit(X_TOY, Y_TOY)
    vote.set_params(estimators=[("c", _FixedTagger())]).fit(X_TOY, Y_TOY)
    assert list(vote.named_estimators_) == ["c"] and len(vote.estimators_) == 1


def test_an_interrupt_ends_the_training_and_the_members_fitted_so_far_vote():
    _RowTagger.fits = _InterruptedTagger.fits = 0
    members = [("a", _RowTagger()), ("cut", _InterruptedTagger("flag")), ("c", _RowTagger())]
    with pytest.warns(UserWarning, match=r"interrupted in member 'cut'.*\['a', 'cut'\], without \['c'\]"):
        vote = VotingTagger(members, weights=[1, 3, 4]).fit(X_TOY, Y_TOY)
    assert (_RowTagger.fits, _InterruptedTagger.fits) == (1, 1)  # 'c' never trained
    assert list(vote.named_estimators_) == ["a", "cut"]
    np.testing.assert_allclose(vote.weights_, [0.25, 0.75])
    assert [len(p) for p in vote.predict(X_TOY)] == [3, 0, 1]
    # a member that lets the interrupt through is left out; the first one re-raises it
    members = [("a", _RowTagger()), ("cut", _InterruptedTagger("raise")), ("c", _RowTagger())]
    with pytest.warns(UserWarning, match=r"\['a'\], without \['cut', 'c'\]"):
        assert list(VotingTagger(members).fit(X_TOY, Y_TOY).named_estimators_) == ["a"]
    with pytest.raises(KeyboardInterrupt):
        VotingTagger([("cut", _InterruptedTagger("raise")), ("a", _RowTagger())]).fit(X_TOY, Y_TOY)
    # the last member interrupted: every member votes
    vote = VotingTagger([("a", _RowTagger()), ("cut", _InterruptedTagger("flag"))]).fit(X_TOY, Y_TOY)
    assert list(vote.named_estimators_) == ["a", "cut"]


def test_not_fitted():
    with pytest.raises(NotFittedError, match="VotingTagger"):
        VotingTagger([("a", _FixedTagger())]).predict(X_TOY)


def test_the_vote_of_two_fine_tuned_taggers(tiny_bert):
    X, y = make_ner()
    X_test, y_test = make_ner(20, seed=5)
    ce = TransformerTokenClassifier(tiny_bert, **FAST)
    focal = TransformerTokenClassifier(tiny_bert, loss="focal", **FAST)
    vote = VotingTagger([("ce", ce), ("focal", focal)]).fit(X, y)
    alone = [clone(ce).fit(X, y), clone(focal).fit(X, y)]  # each member trains as it would alone
    expected = [(a + b) / 2 for a, b in zip(*(m.predict_proba(X_test) for m in alone))]
    for got, want in zip(vote.predict_proba(X_test), expected):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    pred = vote.predict(X_test)
    assert pred == decode_tags(vote.decision_function(X_test), vote.classes_)
    validate_tags(pred, "IOB2", strict=True)
    assert vote.score(X_test, y_test) == pytest.approx(span_f1_score(y_test, pred))
    assert vote.score(X_test, y_test) > 0.5
    # the compare runner and TunedOffsetsClassifier find the members
    assert [name for name, _ in inner_estimators(vote, fitted=False)] == ["['ce']", "['focal']"]
    assert [m for _, m in inner_estimators(vote, fitted=True)] == vote.estimators_


def test_an_interrupted_vote_says_so_and_skimb_compare_does_not_record_it():
    from skimb.compare._runner import _interrupted

    with pytest.warns(UserWarning, match="interrupted"):
        cut = VotingTagger([("a", _RowTagger()), ("cut", _InterruptedTagger("flag")), ("c", _RowTagger())]).fit(
            X_TOY, Y_TOY)
    last = VotingTagger([("a", _RowTagger()), ("cut", _InterruptedTagger("flag"))]).fit(X_TOY, Y_TOY)
    whole = VotingTagger([("a", _RowTagger()), ("b", _RowTagger())]).fit(X_TOY, Y_TOY)
    assert (cut.training_interrupted_, last.training_interrupted_, whole.training_interrupted_) == (True, True, False)
    assert _interrupted(last) and not _interrupted(whole)
    whole.estimators_[1].training_interrupted_ = True  # found inside the ensemble too
    assert _interrupted(whole)
    with pytest.raises(KeyboardInterrupt):  # nothing left to vote
        VotingTagger([("a", _RowTagger()), ("cut", _InterruptedTagger("raise"))], weights=[0, 1]).fit(X_TOY, Y_TOY)


# ----------------------------------------------------------------- a vote of CRF taggers: their log-linear pool
X_CRF_TEST = make_ner(12, seed=5)[0] + [[]]


def _crf_member(tiny_bert, seed):
    return TransformerTokenClassifier(tiny_bert, decoding="crf", **{**FAST, "random_state": seed})


def _scores(member):
    return member.net_.module_.crf.decoding_scores()


def _assert_same_arrays(got, want):
    assert len(got) == len(want)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


@pytest.fixture(scope="module")
def crf_vote(tiny_bert):
    """The default vote of two CRF taggers (different seeds), fitted."""
    return VotingTagger([("a", _crf_member(tiny_bert, 0)), ("b", _crf_member(tiny_bert, 1))]).fit(*make_ner())


def test_the_default_decoding_is_crf_for_crf_members_and_repair_otherwise(crf_vote, tiny_bert):
    assert crf_vote.decoding == "auto"
    a, b = crf_vote.estimators_
    # crf: the members' mean emissions, not the log of their mean marginals
    for got, ea, eb in zip(crf_vote.decision_function(X_CRF_TEST), a.decision_function(X_CRF_TEST),
                           b.decision_function(X_CRF_TEST)):
        np.testing.assert_allclose(got, (ea.astype(float) + eb) / 2, rtol=1e-12)
    # with a member that is no CRF tagger: the repaired argmax of the mean probabilities
    rows = ((0.2, 0.1, 0.7), (0.5, 0.4, 0.1))
    mixed = VotingTagger([("a", _RowTagger(rows)), ("crf", _crf_member(tiny_bert, 0).set_params(max_epochs=1))])
    mixed.fit(X_TOY, Y_TOY)
    assert mixed._decoding(mixed.estimators) == "repair"
    mean = [(p + q) / 2 for p, q in zip(*(m.predict_proba([["x", "y"]]) for m in mixed.estimators_))]
    assert mixed.predict([["x", "y"]]) == decode_tags(np.log(mean), mixed.classes_, "repair")
    # read from the members' parameters: known before fitting
    plain = VotingTagger([("a", _RowTagger()), ("b", _RowTagger())])
    crfs = VotingTagger([("a", _crf_member(tiny_bert, 0)), ("b", _crf_member(tiny_bert, 1))])
    assert (plain._decoding(plain.estimators), crfs._decoding(crfs.estimators)) == ("repair", "crf")


def test_crf_decoding_with_a_member_that_is_no_crf_is_refused_before_any_trains(tiny_bert):
    before = _RowTagger.fits
    vote = VotingTagger([("plain", _RowTagger()), ("crf", _crf_member(tiny_bert, 0))], decoding="crf")
    with pytest.raises(ValueError, match=r"members \['plain'\] are not CRF taggers \(decoding='crf'\)\. Give every "
                                         r"member decoding='crf', or .* decoding='repair' or 'constrained'"):
        vote.fit(X_TOY, Y_TOY)
    assert _RowTagger.fits == before and not hasattr(vote, "estimators_")  # the first member never trained


@pytest.mark.parametrize("params, match", [
    (dict(finetune="head"), r"finetune='head' trains the head on single words"),
    (dict(threshold="tuned", validation_fraction=0.25), r"threshold='tuned' tunes offsets .* threshold=None"),
    (dict(training="sam", training__classes="minority"), r"with training='sam'"),
    (dict(early_stopping=True), r"early_stopping=True needs a validation split"),
])
def test_a_crf_members_refusals_come_before_any_member_trains(tiny_bert, backbone_must_not_load, params, match):
    # fit's checks across a member's parameters ran only in the member's own fit: "ok" trained first
    before = _RowTagger.fits
    vote = VotingTagger([("ok", _RowTagger()), ("crf", _crf_member(tiny_bert, 0).set_params(**params))])
    with pytest.raises(ValueError, match=r"^VotingTagger: member 'crf': TransformerTokenClassifier: .*" + match):
        vote.fit(X_TOY, Y_TOY)
    assert _RowTagger.fits == before and not hasattr(vote, "estimators_")


@pytest.mark.parametrize("params, match", [
    (dict(class_weight={"B-FOO": 2.0}), r"class_weight has labels not in y: \['B-FOO'\]"),
    (dict(loss="focal", loss__alpha=[1.0, 2.0]), r"loss__alpha has 2 entries but there are 5 classes"),
    (dict(head="calora", head__k=50), r"head__k=50 routes more classes than the 5 of this target"),
    (dict(validation_fraction=0.99), r"validation_fraction=0.99 cannot split 30 sentences"),
])
def test_a_members_errors_that_need_the_data_come_before_any_member_trains(tiny_bert, backbone_must_not_load,
                                                                         params, match):
    # they were raised in the member's own fit, after the members before it had trained, unnamed
    X, y = make_ner(30)
    before = _RowTagger.fits
    vote = VotingTagger([("ok", _RowTagger()), ("bad", TransformerTokenClassifier(tiny_bert, **FAST, **params))])
    with pytest.raises(ValueError, match=r"^VotingTagger: member 'bad': .*" + match):
        vote.fit(X, y)
    assert _RowTagger.fits == before and not hasattr(vote, "estimators_")


def test_a_bad_sample_weight_is_refused_before_any_member_trains(tiny_bert, backbone_must_not_load):
    X, y = make_ner(30)
    before = _RowTagger.fits
    vote = VotingTagger([("ok", _RowTagger()), ("tagger", TransformerTokenClassifier(tiny_bert, **FAST))])
    with pytest.raises(ValueError, match=r"^VotingTagger: member 'tagger': sample_weight\[0\] is -1.0"):
        vote.fit(X, y, sample_weight=-np.ones(len(X)))
    assert _RowTagger.fits == before


def test_a_crf_members_ignored_parameters_are_warned_once(tiny_bert):
    # the vote checks the member before any trains, silently: the member's own fit warns
    member = _crf_member(tiny_bert, 0).set_params(class_weight="balanced", max_epochs=1)
    for est in (member, VotingTagger([("crf", member)])):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            est.fit(X_TOY, Y_TOY)
        ignored = [w for w in caught if "class_weight='balanced' is ignored in training" in str(w.message)]
        assert len(ignored) == 1, [str(w.message) for w in caught]


def test_a_vote_of_one_crf_member_is_that_member(tiny_bert):
    vote = VotingTagger([("a", _crf_member(tiny_bert, 0))], weights=[1.0]).fit(*make_ner())
    member = vote.estimators_[0]
    assert vote.predict(X_CRF_TEST) == member.predict(X_CRF_TEST)
    _assert_same_arrays(vote.predict_proba(X_CRF_TEST), member.predict_proba(X_CRF_TEST))
    _assert_same_arrays(vote.decision_function(X_CRF_TEST), member.decision_function(X_CRF_TEST))


def test_a_vote_of_two_crf_members_is_viterbi_of_their_mean_emissions_and_scores(crf_vote):
    a, b = crf_vote.estimators_
    emissions = [(ea.astype(float) + eb) / 2 for ea, eb in zip(a.decision_function(X_CRF_TEST),
                                                                 b.decision_function(X_CRF_TEST))]
    scores = {k: (_scores(a)[k] + _scores(b)[k]) / 2 for k in ("transitions", "start", "end")}
    pred = crf_vote.predict(X_CRF_TEST)
    assert pred == decode_tags(emissions, crf_vote.classes_, "constrained", **scores)
    validate_tags(pred, "IOB2", strict=True)
    # predict_proba: the marginals of that pooled CRF, so that it agrees with predict
    pooled = LinearChainCRF(crf_vote.classes_).double()
    for name, value in scores.items():
        getattr(pooled, name).data.copy_(torch.as_tensor(value))
    for got, em in zip(crf_vote.predict_proba(X_CRF_TEST), emissions):
        np.testing.assert_allclose(got, pooled.marginals(em), rtol=1e-5, atol=1e-6)
    assert crf_vote.predict_proba([[]])[0].shape == (0, len(crf_vote.classes_))


def test_weights_pull_the_crf_pool_towards_the_heavier_member(tiny_bert):
    vote = VotingTagger([("a", _crf_member(tiny_bert, 0)), ("b", _crf_member(tiny_bert, 1))], weights=[1, 0])
    vote.fit(*make_ner())
    a, b = vote.estimators_
    assert vote.predict(X_CRF_TEST) == a.predict(X_CRF_TEST)
    _assert_same_arrays(vote.decision_function(X_CRF_TEST), a.decision_function(X_CRF_TEST))
    _assert_same_arrays(vote.predict_proba(X_CRF_TEST), a.predict_proba(X_CRF_TEST))
    # the members differ, so member b's weight of 0 is what reproduces a
    pairs = zip(a.decision_function(X_CRF_TEST), b.decision_function(X_CRF_TEST))
    assert not all(np.array_equal(p, q) for p, q in pairs)


def test_a_crf_vote_pickles_and_clones(crf_vote):
    loaded = pickle.loads(pickle.dumps(crf_vote))
    assert loaded.predict(X_CRF_TEST) == crf_vote.predict(X_CRF_TEST)
    _assert_same_arrays(loaded.decision_function(X_CRF_TEST), crf_vote.decision_function(X_CRF_TEST))
    copy = clone(crf_vote)
    assert copy.get_params()["decoding"] == "auto" and copy.get_params()["a__decoding"] == "crf"
    assert copy.set_params(decoding="crf")._decoding(copy.estimators) == "crf"
    assert not hasattr(copy, "estimators_")
