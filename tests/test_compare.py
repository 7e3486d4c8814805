"""The comparison command end to end on the tiny backbone and the bundled data."""

import json

import numpy as np
import pytest

from skimb.compare import METHODS, main


def test_list_methods(capsys):
    assert main(["--list-methods"]) == 0
    out = capsys.readouterr().out
    for name in ("ce", "weighted_ce", "embed_lr", "embed_lr_balanced", "embed_ros", "embed_smote", "afl",
                 "focal", "calora_topk", "calora_pseudo", "embed_textcut", "eda_ce"):
        assert name in out


def test_afl_balanced_is_afl_with_inverse_frequency_alpha_by_default_on_single_label_data():
    method = METHODS["afl_balanced"]
    from skimb.compare import Budget

    est = method.build(Budget(), 0, {"task": "multiclass", "min_class_count": 5})
    assert est.get_params()["loss"] == "afl" and est.get_params()["loss__alpha"] == "balanced"
    assert method.tasks == {"multiclass"} and method.default == {"multiclass"}


def test_ce_drw_is_the_class_balanced_loss_deferred_to_80_percent_of_training():
    from skimb.compare import Budget

    method = METHODS["ce_drw"]
    params = method.build(Budget(), 0, {"task": "multiclass", "min_class_count": 5}).get_params()
    assert (params["loss"], params["loss__beta"], params["loss__drw_epoch"]) == ("class_balanced", 0.9999, 0.8)
    assert method.tasks == {"multiclass"} and not method.default


def test_drw_calibrated_is_ce_drw_from_a_third_of_training_with_the_calibrated_rule():
    from skimb.compare import Budget

    method = METHODS["drw_calibrated"]
    params = method.build(Budget(), 0, {"task": "multiclass", "min_class_count": 5}).get_params()
    assert (params["loss"], params["loss__drw_epoch"], params["threshold"]) == ("class_balanced", 0.3, "calibrated")
    assert params["validation_fraction"] == 0.1 and not method.default
    # a third of the default 3 epochs: re-weighted from the second, as measured
    from skimb.losses import ClassBalancedLoss

    assert ClassBalancedLoss([5, 1], drw_epoch=params["loss__drw_epoch"]).drw_start(Budget().max_epochs) == 1


def test_drw_rdrop_calibrated_is_drw_calibrated_with_rdrop():
    from skimb.compare import Budget

    build = {m: METHODS[m].build(Budget(), 0, {"task": "multiclass", "min_class_count": 5}).get_params()
             for m in ("drw_calibrated", "drw_rdrop_calibrated")}
    assert build["drw_rdrop_calibrated"]["training"] == "rdrop" and build["drw_calibrated"]["training"] == "standard"
    same = {k: v for k, v in build["drw_rdrop_calibrated"].items() if not k.startswith("training")}
    assert same == {k: v for k, v in build["drw_calibrated"].items() if not k.startswith("training")}
    assert METHODS["drw_rdrop_calibrated"].tasks == {"multiclass"} and not METHODS["drw_rdrop_calibrated"].default
    soft = {m: METHODS[m].build(Budget(), 0, {"task": "multiclass", "min_class_count": 5}).get_params()
            for m in ("ce_soft_drw", "ce_soft_drw_rdrop")}
    assert soft["ce_soft_drw_rdrop"]["training"] == "rdrop"
    assert {**soft["ce_soft_drw"], "training": "rdrop", "training__alpha": 1.0} == soft["ce_soft_drw_rdrop"]
    assert METHODS["ce_soft_drw_rdrop"].default == {"multiclass"}


def test_soft_drw_rdrop_hamr_is_hamr_on_the_best_recipes_loss_and_rdrop():
    from skimb.compare import Budget

    context = {"task": "multiclass", "min_class_count": 5}
    hamr, recipe = (METHODS[m].build(Budget(), 0, context).get_params()
                    for m in ("soft_drw_rdrop_hamr", "ce_soft_drw_rdrop"))
    assert (hamr["training"], hamr["training__rdrop_alpha"], hamr["validation_fraction"]) == ("hamr", 1.0, 0.1)
    assert recipe["training__alpha"] == hamr["training__rdrop_alpha"]  # R-Drop as the recipe runs it
    assert {k: hamr[k] for k in ("loss", "loss__beta", "loss__drw_epoch")} == \
        {k: recipe[k] for k in ("loss", "loss__beta", "loss__drw_epoch")}
    assert METHODS["soft_drw_rdrop_hamr"].tasks == {"multiclass"} and not METHODS["soft_drw_rdrop_hamr"].default


def test_ce_soft_drw_re_weights_from_the_second_of_3_epochs_with_beta_0999():
    from skimb.compare import Budget
    from skimb.losses import ClassBalancedLoss

    method = METHODS["ce_soft_drw"]
    params = method.build(Budget(), 0, {"task": "multiclass", "min_class_count": 5}).get_params()
    assert (params["loss"], params["loss__beta"], params["loss__drw_epoch"]) == ("class_balanced", 0.999, 0.3)
    assert ClassBalancedLoss([5, 1], drw_epoch=params["loss__drw_epoch"]).drw_start(Budget().max_epochs) == 1
    assert method.tasks == {"multiclass"} and method.default == {"multiclass"}


def test_every_method_builds_an_estimator():
    from skimb.compare import Budget

    for method in METHODS.values():
        for task in method.tasks:
            est = method.build(Budget(), 0, {"task": task, "min_class_count": 5, "catch_all": "other"})
            assert hasattr(est, "fit"), method.name


def test_embed_smote_leaves_a_single_text_class_as_it_is_and_grows_the_others():
    from collections import Counter

    from skimb.compare import Budget

    counts = {"a": 12, "b": 3, "c": 1}
    est = METHODS["embed_smote"].build(Budget(), 0, {"task": "multiclass", "min_class_count": 1,
                                                     "class_counts": counts})
    smote = est.steps[1][1]
    y = np.repeat(list(counts), list(counts.values()))
    X = np.random.default_rng(0).normal(size=(len(y), 4))
    _, y_res = smote.fit_resample(X, y)
    assert Counter(y_res.tolist()) == {"a": 12, "b": 12, "c": 1}
    assert smote.k_neighbors == 2  # the smallest class SMOTE grows has 3 texts


def test_compare_writes_report(tiny_bert, tmp_path, capsys):
    out = tmp_path / "report"
    code = main(["compare", "--backbone", tiny_bert, "--train-size", "150", "--test-size", "60", "--epochs", "1",
                 "--methods", "ce,embed_lr,embed_smote,calora_topk,embed_textcut", "--seeds", "0,1",
                 "--out", str(out)])
    assert code == 0
    for name in ("report.md", "report.html", "results.csv", "summary.csv", "results.json", "per_class_f1.png",
                 "quartile_f1.png", "gaps.png", "confusion_ce.png"):
        assert (out / name).stat().st_size > 0, name
    report = (out / "report.md").read_text()
    assert "| ce |" in report and "macro_f1" in report and "Q1 F1" in report
    assert "gap to `ce`" in report and "**Recommendation.**" in report
    assert "## The rarest classes" in report and "## Confusion matrices" in report
    data = json.loads((out / "results.json").read_text())
    assert data["baseline"] == "ce" and set(data["gaps"]) == {"embed_lr", "embed_smote", "calora_topk", "embed_textcut"}
    for gap in data["gaps"].values():
        assert gap["low"] <= gap["gap"] <= gap["high"]
    assert len(data["results"]) == 10 and all(r["error"] is None for r in data["results"])
    assert all(0 <= r["metrics"]["macro_f1"] <= 1 for r in data["results"])
    # what lr="auto" resolved to, per run and in the header (a short fit on a backbone narrower than 384)
    assert {r["method"]: r["lrs"] for r in data["results"] if r["seed"] == 0} == {
        "ce": [2e-4], "calora_topk": [2e-4], "embed_lr": [], "embed_smote": [], "embed_textcut": []}
    assert "lr=auto (0.0002)" in report


@pytest.mark.slow
def test_every_default_method_runs_where_a_class_has_a_single_training_text(tiny_bert, tmp_path):
    """Extreme imbalance down to singletons: no default method may fail (SMOTE did)."""
    from conftest import make_toy_texts

    X, y = make_toy_texts(n_per_class=(24, 8, 4, 2, 1), seed=0)
    X_test, y_test = make_toy_texts(n_per_class=(10, 4, 2, 1, 1), seed=1)
    rows = [{"text": t, "label": c, "split": "train"} for t, c in zip(X, y)]
    rows += [{"text": t, "label": c, "split": "test"} for t, c in zip(X_test, y_test)]
    path = tmp_path / "singletons.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "report"
    assert main(["compare", "--data", str(path), "--backbone", tiny_bert, "--epochs", "1", "--batch-size", "8",
                 "--max-length", "16", "--methods", "default", "--out", str(out), "--no-progress"]) == 0
    results = json.loads((out / "results.json").read_text())["results"]
    assert {r["method"]: r["error"] for r in results if r["error"]} == {}
    assert "embed_smote" in {r["method"] for r in results}


def test_multilabel_data_are_sent_to_a_goemotions_folder_and_the_remedy_runs(tiny_bert, tmp_path, capsys):
    """--data reads single-label rows: multi-label rows, and a multi-label folder without a test file,
    name the remedy that does read them (not --data), and that remedy runs."""
    rows = tmp_path / "emotions.jsonl"
    rows.write_text('{"text": "so happy", "label": ["joy", "surprise"]}\n', encoding="utf-8")
    assert main(["--data", str(rows), "--methods", "ce"]) == 2
    err = capsys.readouterr().err
    assert "multi-label rows are not supported" in err and "train.tsv" in err and "--dataset" in err
    folder = tmp_path / "emotions"
    folder.mkdir()
    (folder / "labels.txt").write_text("joy\nsurprise\nanger\n", encoding="utf-8")
    lines = [f"{text}\t{ids}\n" for text, ids in (("so happy", "0"), ("what a surprise", "1"), ("happy surprise", "0,1"),
                                                    ("so angry", "2"), ("angry and surprised", "1,2"))]
    (folder / "train.tsv").write_text("".join(lines * 4), encoding="utf-8")
    assert main(["--dataset", str(folder), "--methods", "ce"]) == 2
    err = capsys.readouterr().err
    assert "no test split" in err and "test.tsv" in err and "--data " not in err  # --data would refuse the rows
    (folder / "test.tsv").write_text("".join(lines), encoding="utf-8")
    assert main(["--dataset", str(folder), "--backbone", tiny_bert, "--methods", "ce", "--epochs", "1",
                 "--out", str(tmp_path / "out"), "--no-progress"]) == 0
    assert "task: multilabel" in (tmp_path / "out" / "report.md").read_text()


def test_compare_rejects_unknown_method(capsys):
    assert main(["--methods", "nope", "--train-size", "50", "--test-size", "20"]) == 2
    assert "unknown method" in capsys.readouterr().err


@pytest.mark.parametrize("out", ["afile", "afile/report"])
def test_an_out_that_is_a_file_is_refused_before_any_run(tmp_path, capsys, out):
    (tmp_path / "afile").write_text("x")  # was a FileExistsError traceback from the run journal
    assert main(["--train-size", "50", "--test-size", "20", "--out", str(tmp_path / out)]) == 2
    assert f"--out {tmp_path / out}: {tmp_path / 'afile'} is a file, not a folder" in capsys.readouterr().err


def test_dataset_help_names_every_built_in_data_set():
    # the list was written out by hand and had no goemotions_single
    from skimb.compare import build_parser
    from skimb.datasets import list_datasets

    action = next(a for a in build_parser()._actions if "--dataset" in a.option_strings)
    assert all(name in action.help for name in list_datasets()), action.help


def test_compare_missing_dataset_is_a_clear_error(tmp_path, capsys):
    assert main(["--dataset", str(tmp_path / "nothing-here")]) == 2
    assert "skimb compare:" in capsys.readouterr().err


@pytest.mark.integration
def test_compare_on_cyclone(tiny_bert, tmp_path, data_dir, monkeypatch):
    monkeypatch.setenv("SKIMB_DATA_DIR", str(data_dir))
    out = tmp_path / "cyc"
    assert main(["--dataset", "cyclone_idai_2019", "--backbone", tiny_bert, "--train-size", "200", "--test-size",
                 "100", "--epochs", "1", "--methods", "weighted_ce,embed_lr_balanced", "--out", str(out)]) == 0
    assert "cyclone_idai_2019" in (out / "report.md").read_text()


def test_recommendation_follows_the_intervals():
    from skimb.compare._report import recommend

    assert recommend({"a": (0.05, 0.01, 0.09), "b": (0.08, -0.01, 0.15)}, "ce").startswith("Use `a`: +5.0 points")
    line = recommend({"a": (0.02, -0.01, 0.05)}, "ce")
    assert line.startswith("No method is reliably better than `ce`") and "Keep `ce`" in line


def test_baseline_prefers_weighted_ce_then_ce():
    from skimb.compare._report import choose_baseline, summarise
    from skimb.compare._runner import RunResult

    runs = [RunResult("ce", 0), RunResult("weighted_ce", 0), RunResult("afl", 0)]
    assert choose_baseline(summarise(runs)) == "weighted_ce"  # no scores (a tie): the first listed
    assert choose_baseline(summarise(runs[:1] + runs[2:])) == "ce"
    assert choose_baseline(summarise(runs), "afl") == "afl"
    assert choose_baseline(summarise(runs), "focal") is None  # asked for by name, it did not run
    assert choose_baseline(summarise([RunResult("weighted_ce", 0, error="boom")])) is None


def test_auto_baseline_is_the_better_plain_loss():
    from skimb.compare._report import choose_baseline, summarise
    from skimb.compare._runner import RunResult

    def run(method, seed, f1):
        return RunResult(method, seed, metrics={"macro_f1": f1})

    runs = [run("weighted_ce", 0, 0.50), run("weighted_ce", 1, 0.54), run("ce", 0, 0.55), run("ce", 1, 0.52),
            run("focal", 0, 0.70), run("hamr", 0, 0.90)]
    assert choose_baseline(summarise(runs)) == "ce"  # 0.535 against 0.52; focal and hamr are no text baselines
    assert choose_baseline(summarise(runs), task="token") == "focal"  # class weighting hurts taggers, focal is their bar
    assert choose_baseline(summarise(runs[:4] + [run("focal", 0, 0.4)]), task="token") == "ce"
    # a NaN or a missing score counts for nothing: the other seeds (or the first listed) decide
    assert choose_baseline(summarise([run("weighted_ce", 0, float("nan")), run("ce", 0, 0.3)])) == "ce"
    assert choose_baseline(summarise([run("weighted_ce", 0, float("nan")), RunResult("ce", 0)])) == "weighted_ce"


def test_auto_baseline_on_multilabel_data_is_the_better_of_weighted_bce_and_ce():
    # multi-label data have no weighted_ce: their class-weighting baseline is weighted_bce, a default there
    from skimb.compare._report import choose_baseline, summarise
    from skimb.compare._runner import RunResult

    runs = [RunResult("ce", 0, metrics={"macro_f1": 0.36}), RunResult("weighted_bce", 0, metrics={"macro_f1": 0.40}),
            RunResult("calora_topk", 0, metrics={"macro_f1": 0.38})]
    assert choose_baseline(summarise(runs), task="multilabel") == "weighted_bce"  # not the weaker BCE
    assert choose_baseline(summarise(runs[:1] + runs[2:]), task="multilabel") == "ce"


TINY_BUDGET = dict(max_epochs=1, batch_size=8, device="cpu")


def _compare_on_toy(tiny_bert, toy_data, names, **kwargs):
    """``run_comparison`` of the registered ``names`` on the toy texts (the first 20 as the test set),
    seed 0, with an empty stage-1 cache."""
    from sklearn.utils import Bunch

    from skimb.compare import Budget
    from skimb.compare._registry import get_methods
    from skimb.compare._runner import run_comparison
    from skimb.training import stage1_cache

    X, y = toy_data
    data = Bunch(X_train=X, y_train=y, X_test=X[:20], y_test=y[:20], task="multiclass",
                 target_names=sorted(set(y)))
    stage1_cache.clear()
    return run_comparison(data, get_methods(names, "multiclass"), seeds=[0],
                          budget=Budget(backbone=tiny_bert, **TINY_BUDGET), **kwargs)


def _fit_alone(tiny_bert, name, X, y):
    """Method ``name`` fitted on its own, with nothing in the stage-1 cache."""
    from skimb.compare import Budget
    from skimb.compare._registry import get_methods
    from skimb.training import stage1_cache

    stage1_cache.clear()
    est = get_methods([name], "multiclass")[0].build(Budget(backbone=tiny_bert, **TINY_BUDGET), 0,
                                                     {"task": "multiclass"})
    return est.fit(X, y)


def test_plain_ce_reuses_calora_topks_stage1(tiny_bert, toy_data, empty_stage1_cache):
    from sklearn.metrics import f1_score

    X, y = toy_data
    logs = []
    results = _compare_on_toy(tiny_bert, toy_data, ["ce", "calora_topk"], log=logs.append)
    assert [r.method for r in results] == ["ce", "calora_topk"]  # reported in the order asked
    assert logs[0].startswith("[seed 0] calora_topk")  # ... but the staged head is fitted first
    assert empty_stage1_cache.hits == 1 and all(r.error is None for r in results)
    alone = _fit_alone(tiny_bert, "ce", X, y)
    assert not alone.stage1_cached_
    assert results[0].metrics["macro_f1"] == pytest.approx(f1_score(y[:20], alone.predict(X[:20]), average="macro"))


def test_vote_averages_ce_and_wce_on_the_stage1s_other_methods_cached(tiny_bert, toy_data, empty_stage1_cache):
    from sklearn.metrics import f1_score

    X, y = toy_data
    logs = []
    results = _compare_on_toy(tiny_bert, toy_data, ["vote_ce_wce", "calora_topk", "wce_knn"], log=logs.append)
    assert all(r.error is None for r in results)
    assert empty_stage1_cache.hits == 2  # both members loaded a stage 1 instead of training one
    vote = results[0]
    assert any("vote_ce_wce" in line and "2 stage 1s from the cache" in line for line in logs)
    assert vote.train_s >= max(r.train_s for r in results[1:]) * 0.5  # the cached training counts
    members = [_fit_alone(tiny_bert, name, X, y) for name in ("ce", "weighted_ce")]
    classes = members[0].classes_
    mean = sum(m.predict_proba(X[:20]) for m in members) / 2
    assert vote.metrics["macro_f1"] == pytest.approx(f1_score(y[:20], classes[mean.argmax(1)], average="macro"))


def test_vote_wce_hamr_tuned_is_the_tuned_soft_vote_of_weighted_ce_and_hamr(tiny_bert, toy_data, empty_stage1_cache):
    from sklearn.metrics import f1_score

    from skimb.compare import Budget
    from skimb.compare._registry import METHODS
    from skimb.model_selection import TunedOffsetsClassifier

    X, y = toy_data
    results = _compare_on_toy(tiny_bert, toy_data, ["vote_wce_hamr_tuned"])
    assert results[0].error is None, results[0].error
    est = METHODS["vote_wce_hamr_tuned"].build(Budget(backbone=tiny_bert, **TINY_BUDGET), 0, {"task": "multiclass"})
    assert isinstance(est, TunedOffsetsClassifier) and est.random_state == 0 and est.validation == "estimator"
    weighted, hamr = (member for _, member in est.estimator.estimators)
    assert weighted.class_weight == "balanced" and hamr.training == "hamr" and hamr.class_weight is None
    assert weighted.validation_fraction == hamr.validation_fraction == 0.1  # one split: HAMR's meta set, the tuning
    est.fit(X, y)  # the same fit by hand: the same predictions (same seed, same model)
    assert results[0].metrics["macro_f1"] == pytest.approx(f1_score(y[:20], est.predict(X[:20]), average="macro"))
    assert est.offsets_.shape == (len(set(y)),)


def test_vote_wce_hamr_tuned_shares_stage1s_with_wce_tuned_and_hamr(tiny_bert, toy_data, empty_stage1_cache):
    alone = _compare_on_toy(tiny_bert, toy_data, ["vote_wce_hamr_tuned"])[0]
    logs = []
    results = _compare_on_toy(tiny_bert, toy_data, ["wce_tuned", "vote_wce_hamr_tuned", "hamr"], log=logs.append)
    assert all(r.error is None for r in results), [r.error for r in results]
    # in registry order: the vote loads wce_tuned's stage 1, and hamr loads the vote's HAMR member's
    assert [r.method for r in results] == ["wce_tuned", "vote_wce_hamr_tuned", "hamr"]
    assert empty_stage1_cache.hits == 2
    assert any("vote_wce_hamr_tuned" in line and "(stage 1 from the cache)" in line for line in logs)
    assert any(line.startswith("[seed 0] hamr:") and "(stage 1 from the cache)" in line for line in logs)
    assert results[1].metrics["macro_f1"] == alone.metrics["macro_f1"]  # same model, shared or not


def test_wce_calibrated_loads_wce_tuneds_stage1_and_applies_its_own_rule(tiny_bert, toy_data, empty_stage1_cache):
    results = _compare_on_toy(tiny_bert, toy_data, ["wce_tuned", "wce_calibrated"])
    assert all(r.error is None for r in results), [r.error for r in results]
    assert empty_stage1_cache.hits == 1  # one stage 1 for both decision rules
    from skimb.compare._registry import get_methods

    assert "wce_calibrated" not in [m.name for m in get_methods(None, "multiclass")]  # not a default


def test_only_stage1s_that_two_runs_repeat_are_kept_for_the_task():
    from skimb.compare import Budget
    from skimb.compare._registry import get_methods
    from skimb.compare._runner import _build_runs, _repeated_signatures, _stage1_signature

    context = {"task": "multiclass", "min_class_count": 5, "n_train": 100, "catch_all": None}
    runs = {run.method: run for run in _build_runs(get_methods(["wce_tuned", "vote_wce_hamr_tuned", "hamr", "afl"],
                                                                "multiclass"), Budget(), 0, context, {})}
    repeated = _repeated_signatures(list(runs.values()))
    assert {_stage1_signature(runs[name].estimator) for name in ("wce_tuned", "hamr")} == repeated
    assert _stage1_signature(runs["afl"].estimator) not in repeated


def test_focal_and_focal_calora_share_a_stage1_on_token_data():
    from skimb.compare import Budget
    from skimb.compare._registry import get_methods
    from skimb.compare._runner import _stage1_signature

    context = {"task": "token", "min_class_count": 5, "n_train": 100, "catch_all": "O"}
    focal, staged = (m.build(Budget(), 0, context) for m in get_methods(["focal", "focal_calora"], "token"))
    assert _stage1_signature(focal) == _stage1_signature(staged) is not None
    assert focal._stage1_key(None, None, None, 0, "b", components=focal._check_params()) == \
        staged._stage1_key(None, None, None, 0, "b", components=staged._check_params())


def test_rdrop_taggers_are_the_ner_baselines_trained_with_rdrop():
    from skimb.compare import Budget
    from skimb.compare._registry import get_methods

    context = {"task": "token", "min_class_count": 5, "n_train": 100, "catch_all": "O"}
    ce, focal = (m.build(Budget(), 0, context) for m in get_methods(["ce_rdrop", "focal_rdrop"], "token"))
    assert (ce.loss, ce.training) == ("ce", "rdrop")
    assert (focal.loss, focal.get_params()["loss__gamma"], focal.training) == ("focal", 2.0, "rdrop")
    assert {"ce_rdrop", "focal_rdrop"}.isdisjoint(m.name for m in get_methods("all", "multiclass"))


def test_the_crf_taggers_are_token_methods_and_crf_a_token_default():
    from skimb.compare import Budget
    from skimb.compare._registry import get_methods

    context = {"task": "token", "min_class_count": 5, "n_train": 100, "catch_all": "O"}
    crf, crf_rdrop = (m.build(Budget(), 0, context) for m in get_methods(["crf", "crf_rdrop"], "token"))
    assert (crf.decoding, crf.training, crf.loss) == ("crf", "standard", "ce")
    assert (crf_rdrop.decoding, crf_rdrop.training) == ("crf", "rdrop")
    assert "crf" in [m.name for m in get_methods("default", "token")]
    assert {"crf", "crf_rdrop", "crf_rdrop_case"}.isdisjoint(m.name for m in get_methods("all", "multiclass"))
    (case,) = (m.build(Budget(), 0, context) for m in get_methods(["crf_rdrop_case"], "token"))
    assert (case.decoding, case.training, case.mark_case) == ("crf", "rdrop", True)
    assert "crf_rdrop_case" not in [m.name for m in get_methods("default", "token")]


def test_hamr_on_the_crf_taggers_is_a_token_method():
    from skimb.compare import Budget
    from skimb.compare._registry import get_methods

    context = {"task": "token", "min_class_count": 5, "n_train": 100, "catch_all": "O"}
    plain, rdrop = (m.build(Budget(), 0, context) for m in get_methods(["crf_hamr", "crf_rdrop_hamr"], "token"))
    for clf in (plain, rdrop):
        assert (clf.decoding, clf.training, clf.validation_fraction) == ("crf", "hamr", 0.1)
    assert (plain.get_params()["training__rdrop_alpha"], rdrop.get_params()["training__rdrop_alpha"]) == (0.0, 1.0)
    assert {"crf_hamr", "crf_rdrop_hamr"}.isdisjoint(m.name for m in get_methods("all", "multiclass"))


def test_focal_hamr_is_hamr_on_focal_loss_for_taggers_only():
    from skimb.compare import Budget
    from skimb.compare._registry import get_methods

    context = {"task": "token", "min_class_count": 5, "n_train": 100, "catch_all": "O"}
    (method,) = get_methods(["focal_hamr"], "token")
    est = method.build(Budget(), 0, context)
    assert (est.loss, est.get_params()["loss__gamma"], est.training, est.validation_fraction) == ("focal", 2.0, "hamr", 0.1)
    assert "focal_hamr" not in [m.name for m in get_methods("all", "multiclass")]


def test_ce_prototype_shares_calora_topks_stage1(tiny_bert, toy_data, empty_stage1_cache):
    results = _compare_on_toy(tiny_bert, toy_data, ["calora_topk", "ce_prototype"])
    assert all(r.error is None for r in results)
    assert empty_stage1_cache.hits == 1  # one plain-CE stage 1 for both second stages


def test_calora_last_block_shares_calora_topks_stage1(tiny_bert, toy_data, empty_stage1_cache):
    results = _compare_on_toy(tiny_bert, toy_data, ["calora_topk", "calora_last_block"])
    assert all(r.error is None for r in results)
    assert empty_stage1_cache.hits == 1  # the layered stage 2 runs on the head-only method's stage 1


def test_wce_calora_shares_weighted_ces_stage1(tiny_bert, toy_data, empty_stage1_cache):
    results = _compare_on_toy(tiny_bert, toy_data, ["weighted_ce", "wce_knn", "wce_calora"])
    assert all(r.error is None for r in results)
    assert empty_stage1_cache.hits == 2  # one class-weighted stage 1 for the plain head, kNN and CALoRA


def test_soft_drw_rdrop_calora_shares_ce_soft_drw_rdrops_stage1(tiny_bert, toy_data, empty_stage1_cache):
    results = _compare_on_toy(tiny_bert, toy_data, ["ce_soft_drw_rdrop", "soft_drw_rdrop_calora"])
    assert all(r.error is None for r in results), [r.error for r in results]
    assert empty_stage1_cache.hits == 1  # one R-Drop stage 1 for the plain head and CALoRA
    X, y = toy_data
    est = _fit_alone(tiny_bert, "soft_drw_rdrop_calora", X, y)
    assert (est.loss, est.training, est.head, est.get_params()["loss__drw_epoch"]) == ("class_balanced", "rdrop",
                                                                                       "calora", 0.3)


def test_catch_all_methods_use_the_named_class(tiny_bert, toy_data, empty_stage1_cache):
    names = ["ce_prototype_catch_all", "wce_catch_all", "ranking"]
    missing = _compare_on_toy(tiny_bert, toy_data, names)
    assert all("needs the catch-all class: pass --catch-all LABEL" in r.error for r in missing)
    results = _compare_on_toy(tiny_bert, toy_data, names, catch_all="flood")
    assert all(r.error is None for r in results), [r.error for r in results]
    X, y = toy_data
    for r in results:  # macro-F1 over the real classes alongside the usual one
        real = [f for c, f in r.per_class_f1.items() if c != "flood"]
        assert r.metrics["real_class_macro_f1"] == pytest.approx(np.mean(real))


def test_catch_all_must_be_a_label(capsys, tiny_bert):
    assert main(["--backbone", tiny_bert, "--methods", "ranking", "--catch-all", "no_such_label",
                 "--train-size", "60", "--test-size", "30", "--seeds", "0", "--no-progress"]) == 2
    assert "--catch-all 'no_such_label' is not a label" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["--version"], ["compare", "--version"]])
def test_version(capsys, argv):
    import skimb

    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"skimb {skimb.__version__}"


def test_resume_keeps_finished_runs_and_fits_only_the_rest(tiny_bert, tmp_path, capsys):
    out = tmp_path / "report"
    common = ["compare", "--backbone", tiny_bert, "--train-size", "120", "--test-size", "60", "--epochs", "1",
              "--seeds", "0", "--out", str(out)]
    assert main(common + ["--methods", "ce,embed_lr"]) == 0
    first = json.loads((out / "results.json").read_text())["results"]
    assert len((out / "runs.jsonl").read_text().splitlines()) == 2  # written run by run
    capsys.readouterr()
    assert main(common + ["--methods", "ce,embed_lr,embed_smote", "--resume"]) == 0
    captured = capsys.readouterr()
    log = captured.out
    assert "skimb compare" in captured.err and "1/1" in captured.err  # the progress bar counts only new runs
    assert "ce: kept from the earlier run" in log and "embed_lr: kept from the earlier run" in log
    assert "embed_smote: fitting" in log and "ce: fitting" not in log
    second = {r["method"]: r for r in json.loads((out / "results.json").read_text())["results"]}
    for r in first:
        assert second[r["method"]]["metrics"] == r["metrics"] and second[r["method"]]["train_s"] == r["train_s"]
    assert "embed_smote" in json.loads((out / "results.json").read_text())["gaps"]
    # another budget is another comparison: nothing is kept
    assert main(common + ["--lr", "0.001", "--methods", "ce", "--resume"]) == 0
    assert "kept from the earlier run" not in capsys.readouterr().out


def test_resume_keeps_no_run_that_lr_auto_resolved_by_another_rule(tmp_path, monkeypatch):
    from sklearn.utils import Bunch

    from skimb.backbones import FullFinetune
    from skimb.compare import Budget
    from skimb.compare._runner import RunJournal, RunResult

    data = Bunch(name="toy", X_train=["a", "b"], y_train=[0, 1], X_test=["c"], y_test=[0])
    path = tmp_path / "runs.jsonl"
    journal = RunJournal(path, data=data, budget=Budget())
    journal.start(resume=False)
    journal.append(RunResult("ce", 0, metrics={"macro_f1": 0.5}, lrs=[2e-4]))
    assert set(RunJournal(path, data=data, budget=Budget()).load()) == {("ce", 0)}  # the rule read back from JSON
    monkeypatch.setattr(FullFinetune, "short_fit_tasks", ("multiclass", "multilabel"))  # round 31's: not taggers
    assert RunJournal(path, data=data, budget=Budget()).load() == {}
    monkeypatch.setattr(FullFinetune, "short_fit_steps", 300)  # a later rule for "auto"
    assert RunJournal(path, data=data, budget=Budget()).load() == {}
    explicit = RunJournal(path, data=data, budget=Budget(lr=2e-4))  # an explicit rate needs no rule
    explicit.start(resume=False)
    explicit.append(RunResult("ce", 0, metrics={"macro_f1": 0.5}, lrs=[2e-4]))
    monkeypatch.setattr(FullFinetune, "short_fit_steps", 600)  # written under one rule, read under another
    assert set(RunJournal(path, data=data, budget=Budget(lr=2e-4)).load()) == {("ce", 0)}


def test_default_run_leaves_out_methods_whose_extra_is_missing(monkeypatch):
    from skimb.compare._registry import get_methods
    from skimb.utils import _optional

    assert "hamr" in [m.name for m in get_methods("default", "multiclass")]
    monkeypatch.setattr(_optional, "has_optional", lambda name: name != "faiss")
    names = [m.name for m in get_methods("default", "multiclass")]
    assert "hamr" not in names and "weighted_ce" in names
    assert [m.name for m in get_methods(["hamr"], "multiclass")] == ["hamr"]  # asked for by name: it runs (and says why it fails)


def test_a_method_can_be_a_default_for_some_of_its_tasks_only(capsys):
    from skimb.compare._registry import get_methods

    token = [m.name for m in get_methods("default", "token")]
    assert {"focal", "focal_calora", "focal_hamr", "ce"} <= set(token)  # focal: the NER baseline where data are few or entities sparse
    assert "focal" not in [m.name for m in get_methods("default", "multiclass")]
    assert "focal" in [m.name for m in get_methods("all", "multiclass")]
    assert main(["--list-methods"]) == 0
    assert any(line.startswith("focal ") and "default (token)" in line for line in capsys.readouterr().out.splitlines())


def test_multilabel_defaults_hold_the_best_multilabel_loss_and_the_paper_methods():
    from skimb.compare._registry import get_methods

    names = {m.name for m in get_methods("default", "multilabel")}
    assert names == {"ce", "weighted_bce", "distribution_balanced", "afl", "calora_topk", "hamr", "embed_lr"}  # docs/compare.md


def test_verbose_shows_the_library_messages_and_cleans_up(tiny_bert, tmp_path, capsys):
    import logging

    args = ["--backbone", tiny_bert, "--train-size", "80", "--test-size", "40", "--epochs", "1", "--methods",
            "ce", "--seeds", "0", "--no-progress"]
    assert main([*args, "--out", str(tmp_path / "quiet")]) == 0
    assert "training on" not in capsys.readouterr().err
    assert main([*args, "-v", "--out", str(tmp_path / "loud")]) == 0
    err = capsys.readouterr().err
    assert "TransformerClassifier: training on" in err and "fitted in" in err
    logger = logging.getLogger("skimb")
    assert logger.handlers == [] and logger.propagate and logger.level == logging.NOTSET


def test_vote_focal_calora_hamr_loads_both_members_fits_on_token_data(tiny_bert, empty_stage1_cache):
    from conftest import make_ner
    from sklearn.utils import Bunch

    from skimb.compare import Budget
    from skimb.compare._registry import METHODS, get_methods
    from skimb.compare._runner import run_comparison
    from skimb.ensemble import VotingTagger
    from skimb.metrics import span_f1_score
    from skimb.training import stage1_cache

    (X, y), (X_test, y_test) = make_ner(), make_ner(20, seed=5)
    data = Bunch(X_train=X, y_train=y, X_test=X_test, y_test=y_test, task="token", target_names=["LOC", "PER"])
    budget = Budget(backbone=tiny_bert, **TINY_BUDGET)
    context = {"task": "token", "min_class_count": 5, "n_train": len(X), "catch_all": "O"}
    vote = METHODS["vote_focal_calora_hamr"].build(budget, 0, context)
    assert isinstance(vote, VotingTagger) and "vote_focal_calora_hamr" in [m.name for m in get_methods("default", "token")]
    calora, hamr = (member for _, member in vote.estimators)
    assert (calora.head, calora.loss, hamr.training, hamr.loss) == ("calora", "focal", "hamr", "focal")
    logs = []
    results = run_comparison(data, get_methods(["focal_calora", "focal_hamr", "vote_focal_calora_hamr"], "token"),
                             seeds=[0], budget=budget, log=logs.append)
    assert all(r.error is None for r in results), [r.error for r in results]
    assert empty_stage1_cache.hits == 2  # the vote trained neither member: it loaded both fits
    assert any("vote_focal_calora_hamr" in line and "2 stage 1s from the cache" in line for line in logs)
    stage1_cache.clear()
    alone = vote.fit(X, y)  # the same vote fitted on its own: the same model
    assert not any(m.stage1_cached_ for m in alone.estimators_)
    assert results[2].metrics["micro_f1"] == pytest.approx(span_f1_score(y_test, alone.predict(X_test)))


def test_lr_defaults_to_the_estimators_own_and_is_checked():
    from skimb.compare import Budget, build_parser

    parse = build_parser().parse_args
    assert Budget().lr == "auto" and parse([]).lr == "auto"  # texts 1e-4 (up to 2e-4 on short fits), tagging 2e-4 on MiniLM
    assert parse(["--lr", "3e-4"]).lr == 3e-4
    est = METHODS["ce"].build(Budget(), 0, {"task": "multiclass"})
    assert est.get_params()["lr"] == "auto"
    for bad in ("fast", "0", "-1e-4", "inf", "nan"):
        with pytest.raises(SystemExit):
            parse([f"--lr={bad}"])


# --------------------------------------------------------------------------- registration and API checks
@pytest.fixture
def scratch_registry():
    """``METHODS`` as it was before the test, whatever the test registers."""
    saved = dict(METHODS)
    yield METHODS
    METHODS.clear()
    METHODS.update(saved)


def _build_nothing(budget, seed, context):
    raise AssertionError("no method may be built")


@pytest.mark.parametrize("name", ["lr/balanced", "../up", "a\\b", "ce,focal", "with space", "", "default", "all", 3])
def test_a_method_name_that_is_no_plain_file_name_is_refused(scratch_registry, name):
    from skimb.compare import register_method

    with pytest.raises(ValueError, match="register_method") as info:
        register_method(name, description="d")(_build_nothing)
    assert "letters, digits, '_', '-' and '.'" in str(info.value) or "reserved" in str(info.value)
    assert name not in scratch_registry


def test_a_plain_method_name_is_registered(scratch_registry):
    from skimb.compare import register_method

    register_method("lr_balanced-v1.2", description="d")(_build_nothing)
    assert scratch_registry["lr_balanced-v1.2"].build is _build_nothing


@pytest.mark.parametrize("tasks, default, expected_tasks, expected_default", [
    ("multiclass", "multiclass", {"multiclass"}, {"multiclass"}),  # a string is one task, not its letters
    ("token", True, {"token"}, {"token"}),
    (["multiclass", "token"], "token", {"multiclass", "token"}, {"token"}),
    (("multiclass", "token"), ["multiclass"], {"multiclass", "token"}, {"multiclass"}),
    ("multilabel", False, {"multilabel"}, set()),
    ("multilabel", None, {"multilabel"}, set()),
])
def test_tasks_and_default_take_one_task_name_or_several(scratch_registry, tasks, default, expected_tasks,
                                                         expected_default):
    from skimb.compare import register_method

    register_method("scratch", description="d", tasks=tasks, default=default)(_build_nothing)
    method = scratch_registry["scratch"]
    assert method.tasks == expected_tasks and method.default == expected_default


@pytest.mark.parametrize("tasks, default, error, message", [
    ("ner", False, ValueError, r"tasks holds unknown task\(s\) 'ner'; the tasks are \['multiclass', 'multilabel', "
                               r"'token'\]"),
    (["multiclass", "binary"], False, ValueError, r"tasks holds unknown task\(s\) 'binary'"),
    ((), False, ValueError, "tasks names no task"),
    (3, False, TypeError, "tasks must be a task name or a list of them"),
    ("multiclass", "multilabel", ValueError, r"default names task\(s\) \['multilabel'\] that are not in its tasks"),
    ("multiclass", "ner", ValueError, r"default holds unknown task\(s\) 'ner'"),
    ("multiclass", 1, TypeError, "default must be a task name or a list of them"),
])
def test_unknown_tasks_and_defaults_outside_tasks_are_refused(scratch_registry, tasks, default, error, message):
    from skimb.compare import register_method

    with pytest.raises(error, match=message):
        register_method("scratch", description="d", tasks=tasks, default=default)(_build_nothing)
    assert "scratch" not in scratch_registry


def _toy_bunch(X_test=True):
    from sklearn.utils import Bunch

    from conftest import make_toy_texts

    X, y = make_toy_texts()
    return Bunch(name="toy", X_train=X, y_train=y, X_test=X[:20] if X_test else None,
                 y_test=y[:20] if X_test else None, task="multiclass", target_names=sorted(set(y)))


@pytest.mark.parametrize("seeds, error, message", [
    ([0, 0], ValueError, r"seeds repeats a seed \(0\)"),
    ([0, 1, np.int64(1)], ValueError, r"seeds repeats a seed \(1\)"),
    ([1.5], TypeError, r"seeds\[0\] is 1.5 \(float\); every seed must be an integer"),
    ([0, "1"], TypeError, r"seeds\[1\] is '1' \(str\)"),
    ([True], TypeError, r"seeds\[0\] is True \(bool\)"),
    ([-1], ValueError, r"seeds\[0\] is -1; seeds must be non-negative"),
    ([], ValueError, "seeds is empty"),
    (0, TypeError, r"seeds must be a list of non-negative integers, e.g. \[0, 1, 2\], got 0"),
    ("01", TypeError, "seeds must be a list"),
])
def test_run_comparison_refuses_bad_seeds_before_any_fit(seeds, error, message):
    from skimb.compare import Budget, Method, run_comparison

    with pytest.raises(error, match=message):
        run_comparison(_toy_bunch(), [Method("m", _build_nothing, "d")], budget=Budget(), seeds=seeds,
                       log=lambda s: None)


@pytest.mark.parametrize("methods, error, message", [
    (["embed_lr", "embed_lr"], ValueError, r"method\(s\) \['embed_lr'\] are named more than once"),
    ([], ValueError, "methods is empty"),
    ("embed_lr", TypeError, "methods must be a list of registered methods"),
])
def test_run_comparison_refuses_repeated_or_missing_methods_before_any_fit(methods, error, message):
    from skimb.compare import Budget, Method, run_comparison

    methods = [Method(name, _build_nothing, "d") for name in methods] if isinstance(methods, list) else methods
    with pytest.raises(error, match=message):
        run_comparison(_toy_bunch(), methods, budget=Budget(), seeds=[0], log=lambda s: None)


def test_run_comparison_refuses_a_method_name_in_place_of_a_method():
    from skimb.compare import Budget, run_comparison

    with pytest.raises(TypeError, match=r"methods\[0\] is 'ce', not a Method; pass registered methods"):
        run_comparison(_toy_bunch(), ["ce"], budget=Budget(), seeds=[0], log=lambda s: None)


def test_a_repeated_method_name_is_refused_by_get_methods_and_the_command(capsys):
    from skimb.compare._registry import get_methods

    with pytest.raises(ValueError, match=r"method\(s\) \['ce'\] are named more than once"):
        get_methods(["ce", "embed_lr", "ce"], "multiclass")
    assert main(["--methods", "ce,ce", "--train-size", "50", "--test-size", "20"]) == 2
    assert "are named more than once" in capsys.readouterr().err


def test_run_comparison_without_a_test_split_names_the_remedy():
    from skimb.compare import Budget, Method, run_comparison

    with pytest.raises(ValueError, match=r"data 'toy' has no test split \(X_test / y_test is None\).*"
                                         r"train_test_split\) and set X_test and y_test"):
        run_comparison(_toy_bunch(X_test=False), [Method("m", _build_nothing, "d")], budget=Budget(), seeds=[0],
                       log=lambda s: None)


def test_run_comparison_runs_each_distinct_seed_once():
    from skimb.compare import Budget, Method, run_comparison

    built = []

    def build(budget, seed, context):
        built.append(seed)
        from sklearn.dummy import DummyClassifier

        return DummyClassifier(strategy="most_frequent")

    results = run_comparison(_toy_bunch(), [Method("m", build, "d")], budget=Budget(), seeds=[np.int64(3), 0],
                             log=lambda s: None)
    assert built == [3, 0] and [(r.method, r.seed, r.error) for r in results] == [("m", 3, None), ("m", 0, None)]


@pytest.mark.parametrize("task", ["ner", "binary", "Multiclass", None])
def test_evaluate_refuses_an_unknown_task(task):
    from skimb.compare import evaluate

    with pytest.raises(ValueError, match=r"task must be one of \['multiclass', 'multilabel', 'token'\], got "
                                         r".*two-class data is 'multiclass'"):
        evaluate(task, [["B-PER", "O"]], [["B-PER", "O"]])
    metrics, per_class, _ = evaluate("multiclass", ["a", "b", "a"], ["a", "b", "b"])
    assert metrics["macro_f1"] == pytest.approx((2 / 3 + 2 / 3) / 2) and set(per_class) == {"a", "b"}
