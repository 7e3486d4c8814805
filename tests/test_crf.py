"""The linear-chain CRF over IOB2 tags (skimb.tokens.LinearChainCRF) and the tagger's decoding="crf"."""

from __future__ import annotations

import itertools
import pickle
import warnings

import numpy as np
import pytest
import torch
from conftest import make_ner
from sklearn.base import clone

from skimb import TransformerTokenClassifier
from skimb.tokens import LinearChainCRF, constrained_decode, iob2_transitions, validate_tags
from skimb.utils._param_validation import InvalidParameterError

LABELS = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
FAST = dict(max_epochs=2, batch_size=8, random_state=0, max_length=32)


def _random_crf(seed=0, labels=LABELS):
    torch.manual_seed(seed)
    crf = LinearChainCRF(labels)
    with torch.no_grad():
        for p in crf.parameters():
            p.normal_()
    return crf


def _paths(n_words, labels, *, free_start):
    """Every tag sequence of ``n_words`` that IOB2 allows (the first tag free when ``free_start``)."""
    allowed, inside = iob2_transitions(labels)
    for path in itertools.product(range(len(labels)), repeat=n_words):
        if (free_start or not inside[path[0]]) and all(allowed[a, b] for a, b in zip(path, path[1:])):
            yield path


def _path_score(crf, em, path):
    trans, start, end = (crf.transitions.detach().double(), crf.start.detach().double(), crf.end.detach().double())
    return float(start[path[0]] + end[path[-1]] + sum(em[t, k] for t, k in enumerate(path))
                 + sum(trans[a, b] for a, b in zip(path, path[1:])))


def test_nll_is_the_enumerated_negative_log_likelihood_over_the_labelled_positions():
    crf = _random_crf()
    torch.manual_seed(1)
    emissions = torch.randn(2, 6, len(LABELS))
    # row 0: words at 0, 2, 3 (a sub-token at 1, padding after); row 1: one word; gold valid IOB2
    mask = torch.tensor([[1, 0, 1, 1, 0, 0], [0, 1, 0, 0, 0, 0]], dtype=torch.bool)
    tags = torch.full((2, 6), -100)
    tags[0, [0, 2, 3]] = torch.tensor([3, 4, 0])  # B-PER I-PER O
    tags[1, 1] = 2  # a window cut inside an entity: I-LOC first
    edges = torch.tensor([[True, True], [False, True]])  # row 0 a whole sentence, row 1 cut at its start
    nll = crf.nll(emissions, tags, mask, edges=edges)
    for row, cut in ((0, False), (1, True)):
        em = emissions[row][mask[row]].double()
        gold = tuple(tags[row][mask[row]].tolist())

        def score(p):  # a cut window has no start score
            return _path_score(crf, em, p) - (float(crf.start[p[0]].detach()) if cut else 0.0)

        scores = [score(p) for p in _paths(len(em), LABELS, free_start=cut)]
        expected = np.logaddexp.reduce(scores) - score(gold)
        assert nll[row].item() == pytest.approx(expected, rel=1e-4)


def test_a_whole_sentence_never_opens_with_an_inside_tag_in_training_as_in_decoding():
    crf = _random_crf(seed=3)
    emissions = torch.randn(3, 4, len(LABELS), requires_grad=True)
    tags = torch.tensor([[0, 3, 4, 0], [1, 2, 0, 0], [3, 4, 4, 0]])  # whole sentences, each opening with O or B-X
    nll = crf.nll(emissions, tags, tags != -100)
    nll.sum().backward()
    _, inside = iob2_transitions(LABELS)
    inside = torch.from_numpy(inside)
    assert (crf.start.grad[inside] == 0).all() and (crf.start.grad[~inside] != 0).all()
    # the likelihood the CRF trains is the distribution its marginals (and Viterbi) decode from
    for row in range(3):
        em = emissions[row].detach().double()
        log_z = np.logaddexp.reduce([_path_score(crf, em, p) for p in _paths(4, LABELS, free_start=False)])
        assert nll[row].item() == pytest.approx(log_z - _path_score(crf, em, tuple(tags[row].tolist())), rel=1e-4)


def test_nll_of_a_row_without_labelled_positions_is_zero_and_gradients_reach_every_score():
    crf = _random_crf()
    emissions = torch.randn(2, 3, len(LABELS), requires_grad=True)
    tags = torch.tensor([[1, 2, 0], [-100, -100, -100]])
    nll = crf.nll(emissions, tags, tags != -100)
    assert nll[1].item() == 0.0
    nll.sum().backward()
    assert emissions.grad[1].abs().sum() == 0 and emissions.grad[0].abs().sum() > 0
    assert crf.transitions.grad.abs().sum() > 0 and crf.start.grad.abs().sum() > 0 and crf.end.grad.abs().sum() > 0
    allowed, _ = iob2_transitions(LABELS)
    assert (crf.transitions.grad[torch.from_numpy(~allowed)] == 0).all()  # forbidden pairs never learn


def test_a_window_cut_inside_its_sentence_learns_no_start_or_end_score_there():
    crf = _random_crf(seed=5)
    torch.manual_seed(2)
    emissions = torch.randn(1, 3, len(LABELS))
    tags = torch.tensor([[2, 0, 3]])  # I-LOC O B-PER: a window cut inside an entity
    mask = torch.ones_like(tags, dtype=torch.bool)
    whole = crf.nll(emissions, tags, mask)
    torch.testing.assert_close(crf.nll(emissions, tags, mask, edges=torch.tensor([[True, True]])), whole)
    free = _random_crf(seed=5)
    with torch.no_grad():  # the same CRF with no start and end scores
        free.start.zero_()
        free.end.zero_()
    cut_start = torch.tensor([[False, True]])  # (free has no end score: only its free first tag counts)
    torch.testing.assert_close(crf.nll(emissions, tags, mask, edges=torch.tensor([[False, False]])),
                               free.nll(emissions, tags, mask, edges=cut_start))
    assert 0 < crf.nll(emissions, tags, mask, edges=cut_start).item() < 100  # I-LOC may open a cut window ...
    assert whole.item() > 1000  # ... never a sentence
    ends_cut = crf.nll(emissions, tags, mask, edges=torch.tensor([[True, False]]))  # its start applies, its end not
    assert ends_cut.item() > 1000 and not torch.allclose(ends_cut, whole)
    crf.zero_grad()
    crf.nll(emissions, tags, mask, edges=torch.tensor([[False, False]])).sum().backward()
    assert crf.start.grad.abs().sum() == 0 and crf.end.grad.abs().sum() == 0 and crf.transitions.grad.abs().sum() > 0


def test_crf_training_windows_label_every_word_they_hold_and_mark_the_sentence_edges(tiny_bert):
    from transformers import AutoTokenizer

    from skimb._token_task import TokenTask
    from skimb.tokens import tokenize_words

    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    X, y = make_ner(6, seed=1, max_words=12)
    y_enc = np.array([np.array([LABELS.index(t) for t in tags]) for tags in y], dtype=object)
    windows = tokenize_words(tokenizer, X, 8)
    assert len(windows) > 2 * len(X)  # long sentences: several windows each, overlapping
    by_window = {}
    for whole in (False, True):
        ds = TokenTask._window_rows(windows, y_enc, None, whole_windows=whole)(np.arange(len(X)))
        by_window[whole] = ds
        seen = {}
        for row, (item, labels) in enumerate(ds):
            i = ds.sentence_index[row]
            win = [w for w in windows if w.sentence == i and w.responsible][sum(ds.sentence_index[:row] == i)]
            words = [w for w, label in zip(win.word_ids, labels) if label != -100]
            expected = win.responsible if not whole else sorted({w for w in win.word_ids if w is not None})
            assert words == list(expected)
            assert [labels[win.word_ids.index(w)] for w in words] == [y_enc[i][w] for w in words]
            assert tuple(item["sentence_edges"]) == (words[0] == 0, words[-1] == len(X[i]) - 1)
            for w in words:
                seen[(i, w)] = seen.get((i, w), 0) + 1
        if not whole:  # each word once; whole windows repeat the overlapping words
            assert set(seen.values()) == {1}
        else:
            assert max(seen.values()) > 1
    assert not all(by_window[False].sentence_edges.all(axis=1))


def test_marginals_and_decoding_match_enumeration_with_i_tags_never_first():
    crf = _random_crf(seed=2)
    em = np.random.default_rng(0).normal(size=(4, len(LABELS)))
    paths = list(_paths(4, LABELS, free_start=False))
    scores = np.array([_path_score(crf, torch.from_numpy(em), p) for p in paths])
    probs = np.exp(scores - np.logaddexp.reduce(scores))
    expected = np.zeros_like(em)
    for p, w in zip(paths, probs):
        expected[np.arange(4), list(p)] += w
    np.testing.assert_allclose(crf.marginals(em), expected, atol=1e-10)
    best = constrained_decode(em, LABELS, return_indices=True, **crf.decoding_scores())
    assert tuple(best) == paths[int(scores.argmax())]
    assert crf.marginals(np.zeros((0, len(LABELS)))).shape == (0, len(LABELS))
    with pytest.raises(ValueError, match=r"emissions must be \(n_words, 5\)"):
        crf.marginals(np.zeros((3, 4)))


def test_learned_transitions_change_the_decoding_and_are_checked():
    labels = ["O", "B-PER", "I-PER"]
    scores = np.log([[0.1, 0.6, 0.3], [0.5, 0.1, 0.4]])  # alone: B-PER O
    assert constrained_decode(scores, labels) == ["B-PER", "O"]
    likes_continuing = np.zeros((3, 3))
    likes_continuing[1, 2] = 1.0
    assert constrained_decode(scores, labels, transitions=likes_continuing) == ["B-PER", "I-PER"]
    likes_continuing[0, 2] = 50.0  # a forbidden transition stays forbidden whatever its score
    assert constrained_decode(np.log([[0.9, 0.05, 0.05], [0.1, 0.1, 0.8]]), labels,
                              transitions=likes_continuing) == ["B-PER", "I-PER"]
    with pytest.raises(ValueError, match=r"transitions must have shape \(3, 3\)"):
        constrained_decode(scores, labels, transitions=np.zeros((2, 2)))
    with pytest.raises(ValueError, match="end must be finite"):
        constrained_decode(scores, labels, end=[0.0, np.nan, 0.0])


@pytest.fixture(scope="module")
def crf_tagger(tiny_bert):
    X, y = make_ner()
    return TransformerTokenClassifier(tiny_bert, lr=5e-3, max_epochs=8, batch_size=8, random_state=0,
                                      max_length=32, decoding="crf").fit(X, y)


def test_a_crf_tagger_learns_and_predicts_valid_sequences_with_marginals(crf_tagger):
    X, y = make_ner()
    assert crf_tagger.history_[-1, "train_loss"] < crf_tagger.history_[0, "train_loss"]
    pred = crf_tagger.predict(X)
    validate_tags(pred, "IOB2", strict=True)
    assert crf_tagger.score(X, y) > 0.8
    crf = crf_tagger.net_.module_.crf
    logits = crf_tagger.decision_function(X[:4])
    for proba, lg in zip(crf_tagger.predict_proba(X[:4]), logits):
        np.testing.assert_allclose(proba, crf.marginals(lg), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(proba.sum(1), 1, rtol=1e-5)
    allowed, _ = iob2_transitions(crf_tagger.classes_)
    assert crf.transitions.detach()[torch.from_numpy(allowed)].abs().max() > 1.0  # learnt from their zeros
    assert crf_tagger.predict([[]]) == [[]]


def test_the_crf_trains_at_its_own_rate_without_weight_decay(crf_tagger):
    groups = crf_tagger.net_.optimizer_.param_groups
    crf_params = {id(p) for p in crf_tagger.net_.module_.crf.parameters()}
    crf_groups = [g for g in groups if any(id(p) in crf_params for p in g["params"])]
    assert len(crf_groups) == 1 and {id(p) for p in crf_groups[0]["params"]} == crf_params
    assert crf_groups[0]["initial_lr"] == pytest.approx(5e-3 * LinearChainCRF.lr_multiplier)
    assert crf_groups[0]["weight_decay"] == 0.0


def test_the_crf_loss_is_the_mean_over_labelled_tokens(crf_tagger):
    net = crf_tagger.net_
    logits = torch.randn(2, 4, 5)
    y = torch.tensor([[-100, 1, 2, 0], [0, -100, -100, -100]])
    per_window, weights = net.per_item_loss(logits, y, {"sample_weight": torch.tensor([2.0, 1.0])})
    nll = net.module_.crf.nll(logits, y, y != -100)
    assert per_window.mean().item() == pytest.approx(nll.sum().item() / 4, rel=1e-6)
    assert weights.tolist() == [2.0, 1.0]  # one weight per window, its sentence's


def test_a_model_fitted_with_the_crf_predicts_with_the_other_decodings_and_round_trips(crf_tagger, tmp_path):
    X, _ = make_ner(12, seed=4)
    crf_pred = crf_tagger.predict(X)
    tagger = pickle.loads(pickle.dumps(crf_tagger))
    assert tagger.predict(X) == crf_pred
    tagger.set_params(decoding="repair")
    validate_tags(tagger.predict(X), "IOB2", strict=True)
    tagger.save_pretrained(tmp_path / "saved_as_repair")  # decoding says "repair", the weights hold a CRF
    loaded = TransformerTokenClassifier.load_pretrained(tmp_path / "saved_as_repair", device="cpu")
    assert loaded.decoding == "repair" and loaded.set_params(decoding="crf").predict(X) == crf_pred


def test_predicting_with_the_crf_from_a_model_fitted_without_it_names_the_remedy(tiny_bert, tmp_path):
    X, y = make_ner(24)
    plain = TransformerTokenClassifier(tiny_bert, **{**FAST, "max_epochs": 1}).fit(X, y)
    plain.set_params(decoding="crf")
    for method in (plain.predict, plain.predict_proba):
        with pytest.raises(ValueError, match="fitted without a CRF. Refit with decoding='crf'"):
            method(X[:2])
    plain.save_pretrained(tmp_path / "m")  # decoding says "crf", the weights hold none
    loaded = TransformerTokenClassifier.load_pretrained(tmp_path / "m", device="cpu")
    assert loaded.set_params(decoding="repair").predict(X) == plain.set_params(decoding="repair").predict(X)


@pytest.mark.parametrize("params, message", [
    ({"finetune": "head"}, "finetune='head' trains the head on single words"),
    ({"training": "hamr", "training__meta_loss": "balanced"},
     "training='hamr' training__meta_loss='balanced' weights the meta loss tag by tag"),
])
def test_configurations_the_crf_cannot_train_are_refused_before_the_backbone_loads(
        backbone_must_not_load, params, message):
    X, y = make_ner(24)
    with pytest.raises(InvalidParameterError, match=message):
        TransformerTokenClassifier("unused", decoding="crf", **params).fit(X, y)


def test_the_loss_and_class_weight_a_crf_ignores_are_named_in_a_warning(tiny_bert):
    X, y = make_ner(24)
    with pytest.warns(UserWarning, match=r"loss='focal', loss__gamma=1\.0, class_weight='balanced' is ignored"):
        TransformerTokenClassifier(tiny_bert, decoding="crf", loss="focal", loss__gamma=1.0, class_weight="balanced",
                                   **{**FAST, "max_epochs": 1}).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        TransformerTokenClassifier(tiny_bert, decoding="crf", **{**FAST, "max_epochs": 1}).fit(X, y)


@pytest.mark.parametrize("training", ["rdrop", "sam"])
def test_rdrop_sam_lora_and_windows_train_a_crf_and_the_same_seed_gives_the_same_model(tiny_bert, training):
    X, y = make_ner(24, max_words=20)
    params = dict(decoding="crf", training=training, finetune="lora", **{**FAST, "max_length": 12, "max_epochs": 1})
    a = TransformerTokenClassifier(tiny_bert, **params).fit(X, y)
    b = clone(a).fit(X, y)
    for pa, pb in zip(a.predict_proba(X), b.predict_proba(X)):
        np.testing.assert_array_equal(pa, pb)
    assert np.isfinite(a.history_[-1, "train_loss"])


def test_decoding_is_part_of_the_stage1_key(tiny_bert, empty_stage1_cache):
    X, y = make_ner(24)
    params = dict(head="calora", head__k=1, head__epochs=1, **{**FAST, "max_epochs": 1})
    crf = TransformerTokenClassifier(tiny_bert, decoding="crf", **params).fit(X, y)
    plain = TransformerTokenClassifier(tiny_bert, decoding="repair", **params).fit(X, y)
    assert not crf.stage1_cached_ and not plain.stage1_cached_
    assert hasattr(crf.net_.module_, "crf") and not hasattr(plain.net_.module_, "crf")
    validate_tags(crf.predict(X), "IOB2", strict=True)  # CALoRA's stage 2 on a CRF stage 1


def test_an_inf_emission_loses_to_any_path_without_one_whatever_the_learned_scores():
    labels = ["O", "B-P", "I-P"]
    transitions = np.zeros((3, 3))
    transitions[0, :2] = -50.0  # O -> O and O -> B-P cost much
    transitions[1, 2] = 50.0  # B-P -> I-P pays much
    path = constrained_decode(np.array([[0.0, -np.inf, 0.0], [0.0, 0.0, 0.0]]), labels, transitions=transitions)
    assert path[0] == "O"  # B-P first would need the -inf emission


@pytest.mark.parametrize("params, message", [
    ({"training": "sam", "training__classes": "minority"}, "perturbs the minority tags' token losses only"),
    ({"threshold": "tuned", "validation_fraction": 0.25}, "not for the CRF's Viterbi decoding"),
])
def test_crf_refuses_token_level_sam_and_tuned_offsets_before_the_backbone_loads(backbone_must_not_load,
                                                                                  params, message):
    X, y = make_ner(24)
    with pytest.raises(InvalidParameterError, match=message):
        TransformerTokenClassifier("unused", decoding="crf", **params).fit(X, y)


def test_decode_tags_passes_a_crfs_scores_to_the_constrained_decoding_only():
    from skimb.tokens import decode_tags

    crf = _random_crf(seed=4)
    em = [np.random.default_rng(1).normal(size=(3, len(LABELS))), np.zeros((0, len(LABELS)))]
    scores = crf.decoding_scores()
    assert decode_tags(em, LABELS, "constrained", **scores) == [constrained_decode(em[0], LABELS, **scores), []]
    with pytest.raises(ValueError, match="give them with decoding='constrained'"):
        decode_tags(em, LABELS, "repair", **scores)


# ------------------------------------------------------------------------- HAMR on a CRF


def _crf_batch(seed=0):
    """Emissions and tags of three windows (the last with no labelled position)."""
    torch.manual_seed(seed)
    emissions = torch.randn(3, 5, len(LABELS))
    tags = torch.full((3, 5), -100)
    tags[0, :4] = torch.tensor([1, 2, 0, 3])
    tags[1, 1] = 0
    return emissions, tags


def test_hamr_weighs_a_crf_window_by_its_likelihood_and_trains_as_the_net_at_unit_weights():
    from skimb.training.hamr._meta import weighted_update_loss
    from skimb.training.hamr._trainer import unit_losses

    crf = _random_crf(seed=2)
    emissions, tags = _crf_batch()
    mask = tags != -100
    losses, terms = unit_losses(emissions, tags, criterion=None, pad=-100, crf=crf)
    nll = crf.nll(emissions, tags, mask)
    # per labelled token, so that windows of any length share one scale (the empty window scores 0)
    torch.testing.assert_close(losses, nll / torch.tensor([4.0, 1.0, 1.0]))
    # weights of 1: the net's own loss, the likelihood's mean over the batch's labelled tokens; the
    # virtual step and the real update both descend it
    torch.testing.assert_close(weighted_update_loss(torch.ones(3), losses, terms), nll.sum() / 5)
    torch.testing.assert_close(weighted_update_loss(torch.tensor([0.0, 2.0, 1.0]), losses, terms), 2 * nll[1] / 5)
    # sample weights scale the window's loss and its update alike
    sw = torch.tensor([0.5, 1.0, 1.0])
    weighted, terms = unit_losses(emissions, tags, None, pad=-100, crf=crf, sample_weight=sw)
    torch.testing.assert_close(weighted, losses * sw)
    torch.testing.assert_close(weighted_update_loss(torch.ones(3), weighted, terms), (0.5 * nll[0] + nll[1]) / 5)


def test_hamrs_meta_loss_on_a_crf_is_its_likelihood_per_labelled_token():
    from skimb.training.hamr import meta_loss_function

    crf = _random_crf(seed=3)
    emissions, tags = _crf_batch(seed=1)
    expected = crf.nll(emissions, tags, tags != -100).sum() / 5
    torch.testing.assert_close(meta_loss_function("token", crf=crf)(emissions, tags), expected)
    with pytest.raises(ValueError, match="no per-tag weights"):
        meta_loss_function("token", torch.ones(len(LABELS)), crf=crf)


def test_hamr_trains_a_crf_tagger_with_the_mean_meta_objective_where_tags_are_mostly_o(tiny_bert):
    X, y = make_ner(40)
    X, y = X + [["plain", "words", "here", "only", "more", "filler"]] * 200, y + [["O"] * 6] * 200
    params = dict(decoding="crf", training="hamr", validation_fraction=0.2, **{**FAST, "max_epochs": 1, "batch_size": 16})
    a = TransformerTokenClassifier(tiny_bert, **params).fit(X, y)
    assert a.meta_objective_ == "mean"  # without a CRF: "balanced" on these tags (test_hamr_training)
    assert np.isfinite(a.history_[-1, "meta_loss"]) and np.isfinite(a.history_[-1, "train_loss"])
    validate_tags(a.predict(X[:20]), "IOB2", strict=True)
    b = clone(a).fit(X, y)
    for pa, pb in zip(a.predict_proba(X[:20]), b.predict_proba(X[:20])):
        np.testing.assert_array_equal(pa, pb)


def test_hamrs_token_loss_is_named_as_ignored_under_a_crf(tiny_bert):
    X, y = make_ner(24)
    with pytest.warns(UserWarning, match="training__token_loss is ignored: a CRF trains by whole windows' likelihood"):
        TransformerTokenClassifier(tiny_bert, decoding="crf", training="hamr", training__token_loss="max",
                                   validation_fraction=0.25, **{**FAST, "max_epochs": 1}).fit(X, y)


@pytest.mark.parametrize("labels, message", [
    (["O", "B-PER", "I-PER", "E-PER"], "E-PER"),
    (["O", "PER", "LOC"], "PER"),
    (["O", "B-PER", "I-PER", "I-PER"], r"must be distinct .*\['I-PER'\] repeat"),
])
def test_a_crf_refuses_labels_that_are_not_distinct_iob2_tags(labels, message):
    with pytest.raises(ValueError, match=message):
        LinearChainCRF(labels)


def test_batched_viterbi_is_the_decoding_of_each_rows_labelled_words():
    crf = _random_crf(seed=7)
    rng = np.random.default_rng(3)
    emissions = torch.as_tensor(rng.normal(size=(4, 7, len(LABELS))), dtype=torch.float32)
    mask = torch.as_tensor(rng.random((4, 7)) < 0.7)
    mask[3] = False  # a row without a labelled word
    paths = crf.viterbi(emissions, mask)
    assert (paths[~mask] == -1).all() and (paths[3] == -1).all()
    for row in range(3):  # whole sentences: a tagger's own decoding of the same scores
        em = emissions[row][mask[row]].double().numpy()
        expected = constrained_decode(em, LABELS, return_indices=True, **crf.decoding_scores())
        assert paths[row][mask[row]].tolist() == list(expected)
    # a window cut at both edges: no start or end score, and I-X may come first
    em = emissions[:1, :3]
    cut = crf.viterbi(em, torch.ones(1, 3, dtype=torch.bool), edges=torch.tensor([[False, False]]))
    free = max(_paths(3, LABELS, free_start=True),
               key=lambda p: _path_score(crf, em[0].double(), p) - float(crf.start[p[0]].detach()) - float(crf.end[p[-1]].detach()))
    assert tuple(cut[0].tolist()) == free


def test_early_stopping_on_macro_f1_scores_a_crf_taggers_viterbi_paths(tiny_bert):
    from sklearn.metrics import f1_score

    X, y = make_ner(60, seed=2)
    clf = TransformerTokenClassifier(tiny_bert, decoding="crf", validation_fraction=0.3, early_stopping="f1_macro",
                                     patience=5, **{**FAST, "max_epochs": 3}).fit(X, y)
    valid = clf.validation_indices_
    truth = [t for i in valid for t in y[i]]
    predicted = [t for tags in clf.predict([X[i] for i in valid]) for t in tags]
    best = max(clf.history_[:, "valid_f1_macro"])
    assert best == pytest.approx(f1_score(truth, predicted, average="macro"), abs=1e-6)
