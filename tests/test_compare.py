"""The comparison command end to end on the tiny backbone and the bundled data."""

import json

import pytest

from skimb.compare import METHODS, main


def test_list_methods(capsys):
    assert main(["--list-methods"]) == 0
    out = capsys.readouterr().out
    for name in ("ce", "weighted_ce", "embed_lr", "embed_lr_balanced", "embed_ros", "embed_smote", "afl",
                 "focal", "calora_topk", "calora_pseudo", "embed_textcut", "eda_ce"):
        assert name in out


def test_every_method_builds_an_estimator():
    from skimb.compare import Budget

    for method in METHODS.values():
        for task in method.tasks:
            est = method.build(Budget(), 0, {"task": task, "min_class_count": 5})
            assert hasattr(est, "fit"), method.name


def test_compare_writes_report(tiny_bert, tmp_path, capsys):
    out = tmp_path / "report"
    code = main(["compare", "--backbone", tiny_bert, "--train-size", "150", "--test-size", "60", "--epochs", "1",
                 "--methods", "ce,embed_lr,embed_smote,calora_topk,embed_textcut", "--seeds", "0,1",
                 "--out", str(out)])
    assert code == 0
    for name in ("report.md", "results.csv", "summary.csv", "results.json", "per_class_f1.png", "quartile_f1.png"):
        assert (out / name).stat().st_size > 0, name
    report = (out / "report.md").read_text()
    assert "| ce |" in report and "macro_f1" in report and "Q1 F1" in report
    data = json.loads((out / "results.json").read_text())
    assert len(data["results"]) == 10 and all(r["error"] is None for r in data["results"])
    assert all(0 <= r["metrics"]["macro_f1"] <= 1 for r in data["results"])


def test_compare_rejects_unknown_method(capsys):
    assert main(["--methods", "nope", "--train-size", "50", "--test-size", "20"]) == 2
    assert "unknown method" in capsys.readouterr().err


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
