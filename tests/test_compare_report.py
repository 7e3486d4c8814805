"""skimb compare: --jobs, --data (CSV / JSONL files), the per-class views and report.html."""

import csv
import json
from html.parser import HTMLParser

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix
from sklearn.utils import Bunch

from skimb.compare import Budget, main
from skimb.compare._data import load_table
from skimb.compare._per_class import normalise_by_true_class, pooled_confusion, rarest_classes
from skimb.compare._registry import get_methods
from skimb.compare._report import write_report
from skimb.compare._runner import RunResult, _build_runs, _confusion, _context, _plan, score

from conftest import make_toy_texts


def _write_csv(path, rows, header):
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.fixture
def toy_csv(tmp_path):
    """60 texts of 3 imbalanced classes (36/15/9) in 'body' and 'category' columns."""
    X, y = make_toy_texts(n_per_class=(36, 15, 9))
    return _write_csv(tmp_path / "tickets.csv", [[i, t, c] for i, (t, c) in enumerate(zip(X, y))],
                      ["id", "body", "category"])


# --------------------------------------------------------------------------- --jobs
def test_plan_keeps_a_staged_method_with_the_plain_methods_it_feeds():
    methods = get_methods(["ce", "weighted_ce", "afl", "calora_topk", "wce_knn", "embed_lr", "calora_pseudo"],
                          "multiclass")
    context = {"task": "multiclass", "min_class_count": 5}
    by_seed = [_build_runs(methods, Budget(), seed, context, done={}) for seed in (0, 1)]

    def names(tasks):
        return [[(run.method, run.seed) for run in task] for task in tasks]

    sequential = names(_plan(by_seed, split_seeds=False))
    assert [len(task) for task in sequential] == [7, 7]  # one task per seed, staged heads first
    assert [m for m, _ in sequential[0][:3]] == ["calora_topk", "wce_knn", "calora_pseudo"]
    parallel = names(_plan(by_seed, split_seeds=True))
    assert parallel[:4] == [[("calora_topk", 0), ("calora_pseudo", 0), ("ce", 0)],
                            [("wce_knn", 0), ("weighted_ce", 0)], [("afl", 0)], [("embed_lr", 0)]]
    assert len(parallel) == 8 and all(s == 1 for task in parallel[4:] for _, s in task)


def test_jobs_2_gives_the_results_of_jobs_1_and_journals_every_run(tiny_bert, toy_csv, tmp_path, capsys):
    common = ["--data", str(toy_csv), "--text-column", "body", "--label-column", "category", "--backbone", tiny_bert,
              "--epochs", "1", "--batch-size", "8", "--device", "cpu", "--seeds", "0,1", "--no-progress"]
    methods = ["--methods", "ce,calora_topk,embed_lr"]
    assert main(common + methods + ["--out", str(tmp_path / "one")]) == 0
    capsys.readouterr()
    assert main(common + methods + ["--jobs", "2", "--out", str(tmp_path / "two")]) == 0
    log = capsys.readouterr().out
    for seed in (0, 1):  # the staged method's worker gave ce its stage 1
        assert any(line.startswith(f"[seed {seed}] ce: macro_f1=") and "stage 1 from the cache" in line
                   for line in log.splitlines())

    def results(folder):
        return {(r["method"], r["seed"]): (r["metrics"], r["per_class"], r["confusion"], r["error"])
                for r in json.loads((tmp_path / folder / "results.json").read_text())["results"]}

    assert len(results("two")) == 6 and results("two") == results("one")
    journal = [json.loads(line)["result"] for line in (tmp_path / "two" / "runs.jsonl").read_text().splitlines()]
    assert sorted((r["method"], r["seed"]) for r in journal) == sorted(results("one"))
    assert "parallel: 2 worker processes" in (tmp_path / "two" / "report.md").read_text()
    # --resume under --jobs fits only the missing runs
    more = ["--methods", "ce,calora_topk,embed_lr,embed_lr_balanced", "--jobs", "2", "--resume"]
    assert main(common + more + ["--out", str(tmp_path / "two")]) == 0
    log = capsys.readouterr().out
    assert "embed_lr_balanced: fitting" in log and "ce: fitting" not in log and "ce: kept from the earlier run" in log
    assert len((tmp_path / "two" / "runs.jsonl").read_text().splitlines()) == 8


@pytest.mark.parametrize("args, message", [
    (["--jobs", "0"], "--jobs takes a positive integer, got '0'"),
    (["--epochs", "-1"], "--epochs takes a positive integer"),
    (["--batch-size", "0"], "--batch-size takes a positive integer"),
    (["--max-length", "0"], "--max-length takes a positive integer"),
    (["--seeds", "a"], "--seeds takes comma-separated non-negative integers, got 'a'"),
    (["--seeds", ""], "--seeds takes comma-separated non-negative integers"),
    (["--seeds", "0,0"], "--seeds repeats a seed"),
    (["--seeds", "1 1"], "--seeds repeats a seed"),
    (["--train-size", "1.5"], "--train-size takes a count (a whole number), a fraction <= 1 or 0, got '1.5'"),
    (["--test-size", "-3"], "--test-size takes a count"),
])
def test_bad_budget_arguments_are_refused_by_the_parser(args, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(args + ["--methods", "embed_lr"])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["--methods", ""], "--methods names no method"),
    (["--methods", "ce,embed_lr", "--baseline", "weighted-ce"],
     "--baseline 'weighted-ce' is not among the methods run (ce, embed_lr)"),
    (["--device", "tpu"], "--device 'tpu' names no torch device"),
    (["--max-length", "100000"], "--max-length 100000 is more tokens than the backbone takes"),
    (["--backbone", "/no/such/model"], "--backbone /no/such/model: Could not load the backbone"),
])
def test_what_every_run_would_fail_on_is_refused_before_any_run(args, message, tiny_bert, toy_csv, tmp_path,
                                                                 capsys):
    common = ["--data", str(toy_csv), "--text-column", "body", "--label-column", "category", "--out",
              str(tmp_path / "out"), "--no-progress"]
    backbone = [] if "--backbone" in args else ["--backbone", tiny_bert]
    assert main(common + backbone + args) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # nothing ran


# --------------------------------------------------------------------------- --data
def test_csv_with_custom_columns_is_split_stratified(toy_csv):
    data = load_table(toy_csv, text_column="body", label_column="category")
    assert data.task == "multiclass" and data.name == "tickets.csv" and data.target_names == ["donation", "flood", "injury"]
    assert len(data.X_train) == 48 and len(data.X_test) == 12  # the default 20% held out
    assert all(isinstance(t, str) and t for t in data.X_train)
    assert {c: int((data.y_test == c).sum()) for c in data.target_names} == {"donation": 3, "flood": 7, "injury": 2}
    assert len(load_table(toy_csv, text_column="body", label_column="category", test_size=0.5).X_test) == 30
    assert len(load_table(toy_csv, text_column="body", label_column="category", test_size=15).X_test) == 15


def test_jsonl_with_custom_columns_integer_labels_and_a_split_column(tmp_path):
    X, y = make_toy_texts(n_per_class=(12, 6, 4))
    codes = {c: i for i, c in enumerate(sorted(set(y)))}
    records = [{"message": t, "code": codes[c], "split": "test" if i % 4 == 0 else "train"}
               for i, (t, c) in enumerate(zip(X, y))]
    data = load_table(_write_jsonl(tmp_path / "msgs.jsonl", records), text_column="message", label_column="code")
    assert data.target_names == ["0", "1", "2"]
    assert len(data.X_test) == sum(r["split"] == "test" for r in records)
    assert data.X_test[0] == records[0]["message"] and data.y_test[0] == str(records[0]["code"])


def test_cli_reads_a_csv_given_to_dataset(tiny_bert, toy_csv, tmp_path, capsys):
    out = tmp_path / "rep"
    assert main(["--dataset", str(toy_csv), "--text-column", "body", "--label-column", "category", "--backbone",
                 tiny_bert, "--methods", "embed_lr", "--out", str(out), "--no-progress"]) == 0
    assert "skimb compare: tickets.csv (multiclass), 48 train / 12 test" in capsys.readouterr().out


@pytest.mark.parametrize("content, column, expected", [
    ("body,category\nhello,a\n", "text", ["tickets.csv line 2: no column 'text'", "['body', 'category']",
                                         "--text-column"]),
    ("text,label\nhello,a\n,b\n", "text", ["tickets.csv line 3: the column 'text' is empty"]),
    ("text,label\nhello,a\nworld\n", "text", ["line 3: no value in the column 'label'"]),
    ("text;label\nhello;a\n", "text", ["no column 'text'", "separated by ';'"]),
    ("text,label\nhello,a\nworld,a\nagain,a\n", "text", ["single class ('a')", "at least two classes"]),
    ("text,label\nhello,a\nworld,a\nagain,b\nmore,b\nlast,c\n", "text", ["['c'] have a single row",
                                                                       "'split' column"]),
    ("", "text", ["tickets.csv: the file is empty"]),
])
def test_csv_errors_name_the_file_line_and_column(tmp_path, content, column, expected):
    path = tmp_path / "tickets.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError) as info:
        load_table(path, text_column=column)
    for part in expected:
        assert part in str(info.value)


@pytest.mark.parametrize("line, expected", [
    ('{"text": 3, "label": "a"}', "line 2: the column 'text' holds 3 (int); every text must be a string"),
    ('{"label": "a", "split": "train"}', "line 2: no column 'text'; the columns present are ['label', 'split']"),
    ('{"text": null, "label": "a"}', "line 2: the column 'text' is null"),
    ('{"text": "  ", "label": "a"}', "line 2: the column 'text' is empty"),
    ('{"text": "hi", "label": ["a", "b"]}', "multi-label rows are not supported"),
    ('{"text": "hi", "label": "a", "split": "holdout"}', "line 2: the column 'split' holds 'holdout'"),
    ('{"text": "hi", "label": "a"}', "line 2: no value in the column 'split', which other rows have"),
    ('["hi", "a"]', "line 2: a JSON list, expected an object"),
    ('{"text": "hi", "label": "a"', "line 2: not valid JSON"),
])
def test_jsonl_errors_name_the_line(tmp_path, line, expected):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"text": "first", "label": "b", "split": "train"}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match="rows.jsonl") as info:
        load_table(path)
    assert expected in str(info.value)


def test_cli_data_errors_are_clear(tmp_path, toy_csv, capsys):
    assert main(["--data", str(toy_csv), "--methods", "embed_lr"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("skimb compare: ") and "no column 'text'" in err and "'body'" in err
    assert main(["--data", str(toy_csv), "--dataset", "sms_spam"]) == 2
    assert "either --dataset or --data" in capsys.readouterr().err
    (tmp_path / "x.tsv").write_text("a\tb\n")
    assert main(["--data", str(tmp_path / "x.tsv")]) == 2
    assert "--data reads ['.csv', '.jsonl']" in capsys.readouterr().err
    assert main(["--data", str(toy_csv), "--text-column", "body", "--label-column", "category",
                 "--test-size", "0.01"]) == 2
    assert "--test-size 0.01 holds out 1 of 60 rows" in capsys.readouterr().err
    assert main(["--data", str(tmp_path / "missing.csv")]) == 2
    assert "missing.csv: no such file" in capsys.readouterr().err


# --------------------------------------------------------------------------- the report
def _run(method, seed, y_true, y_pred, y_train):
    from skimb.metrics import example_counts

    labels = np.unique(np.concatenate([y_train, y_true]))
    res = RunResult(method, seed, train_s=1.0, predict_s=0.1, peak_mib=100.0)
    res.metrics, res.per_class, res.quartile_f1 = score("multiclass", y_true, y_pred, y_train=y_train)
    res.per_class_f1 = {k: v["f1"] for k, v in res.per_class.items()}
    res.confusion = _confusion("multiclass", y_true, y_pred, labels)
    res.counts = example_counts("multiclass", y_true, y_pred, labels=labels)
    return res


@pytest.fixture
def fake_comparison():
    """Hand-made predictions of three methods on 8 classes, two seeds (no model is fitted)."""
    rng = np.random.default_rng(0)
    classes = np.array(list("abcdefgh"))
    train_counts = {"a": 80, "b": 40, "c": 30, "d": 20, "e": 12, "f": 8, "g": 5, "h": 3}
    y_train = np.repeat(classes, [train_counts[c] for c in classes])
    y_test = np.repeat(classes, [20, 12, 10, 8, 6, 5, 4, 3])
    results, predictions = [], {}
    for seed in (0, 1):
        for method, accuracy in (("weighted_ce", 0.6), ("ce", 0.5), ("afl", 0.9)):
            wrong = rng.random(len(y_test)) > accuracy
            y_pred = predictions[method, seed] = np.where(wrong, rng.choice(classes, len(y_test)), y_test)
            results.append(_run(method, seed, y_test, y_pred, y_train))
    data = Bunch(name="fake", task="multiclass", X_train=["t"] * len(y_train), y_train=y_train,
                 X_test=["t"] * len(y_test), y_test=y_test, target_names=list(classes))
    return data, results, predictions


def _write(tmp_path, data, results):
    methods = get_methods(["weighted_ce", "ce", "afl"], "multiclass")
    return write_report(tmp_path / "rep", data=data, methods=methods, budget=Budget(), seeds=[0, 1],
                        results=results, wall_s=3.0)


def test_confusion_matrix_is_normalised_by_true_class(fake_comparison):
    data, results, predictions = fake_comparison
    labels, counts = pooled_confusion(results, "afl")
    matrix = normalise_by_true_class(counts)
    assert labels == list("abcdefgh") and np.allclose(matrix.sum(axis=1), 1.0)
    # scikit-learn's normalize="true" on the predictions of both seeds
    y_true = np.concatenate([data.y_test, data.y_test])
    y_pred = np.concatenate([predictions["afl", 0], predictions["afl", 1]])
    assert np.allclose(matrix, confusion_matrix(y_true, y_pred, labels=labels, normalize="true"))
    # a class without test examples: a row of NaN (drawn grey), not a row of zeros
    assert np.isnan(normalise_by_true_class([[2, 0], [0, 0]])[1]).all()


def test_a_confusion_plot_draws_dollar_signs_in_class_names(tmp_path):
    # a class named "$\\frac$" was read as TeX: a ParseSyntaxException at savefig
    pytest.importorskip("matplotlib")
    from skimb.compare._per_class import plot_confusion

    out = plot_confusion(np.eye(2), ["$\\frac$", "$5 or $10"], tmp_path / "c.png", title="confusion")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_rarest_classes_are_the_rarest_quarter_and_at_least_three():
    counts = {c: n for c, n in zip("abcdefghijklmnop", range(100, 0, -6))}
    assert rarest_classes(counts, list(counts)) == ["p", "o", "n", "m"]  # 16 classes -> 4
    assert rarest_classes({"a": 5, "b": 1}, ["a", "b"]) == ["b", "a"]
    assert rarest_classes({"a": 9, "b": 3, "c": 3, "d": 7}, list("abcd")) == ["b", "c", "d"]


def test_report_shows_the_rare_classes_and_confusions_of_best_and_baseline(tmp_path, fake_comparison):
    data, results, _ = fake_comparison
    path = _write(tmp_path, data, results)
    report = path.read_text()
    assert json.loads((path.parent / "results.json").read_text())["best"] == "afl"
    section = report.split("## The rarest classes")[1].split("\n## ")[0]
    table = [line for line in section.splitlines() if line.startswith("| ")]
    assert table[0] == ("| class | train | test | afl precision | afl recall | afl F1 | weighted_ce precision | "
                        "weighted_ce recall | weighted_ce F1 |")
    assert [row.split(" | ")[0] for row in table[1:]] == ["| h", "| g", "| f"]  # 8 classes -> at least 3
    afl = [r for r in results if r.method == "afl"]
    expected_f1 = np.mean([r.per_class["h"]["f1"] for r in afl])
    assert table[1].split(" | ")[1:4] == ["3", "3", f"{np.mean([r.per_class['h']['precision'] for r in afl]):.3f}"]
    assert table[1].split(" | ")[5] == f"{expected_f1:.3f}"
    for name in ("confusion_afl.png", "confusion_weighted_ce.png"):
        assert (path.parent / name).stat().st_size > 0 and f"]({name})" in report
    assert not (path.parent / "confusion_ce.png").exists()


class _Tags(HTMLParser):
    """The image sources and the h1/h2 heading texts of a page."""

    def __init__(self):
        super().__init__()
        self.img_src, self.headings, self._heading = [], [], None

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.img_src.append(dict(attrs)["src"])
        if tag in ("h1", "h2"):
            self._heading = ""

    def handle_data(self, data):
        if self._heading is not None:
            self._heading += data

    def handle_endtag(self, tag):
        if tag in ("h1", "h2"):
            self.headings.append(self._heading)
            self._heading = None


def test_report_html_is_self_contained(tmp_path, fake_comparison):
    data, results, _ = fake_comparison
    folder = _write(tmp_path, data, results).parent
    page = (folder / "report.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "<style>" in page
    assert "http://" not in page and "https://" not in page and 'src="file' not in page and "<link" not in page
    assert '<img src="data:image/png;base64,' in page
    parser = _Tags()
    parser.feed(page)
    pngs = sorted(p.name for p in folder.glob("*.png"))
    assert len(parser.img_src) == len(pngs) == 5  # gaps, two confusions, per-class F1, quartile F1
    assert all(src.startswith("data:image/png;base64,") for src in parser.img_src)
    md_headings = [line.lstrip("# ").replace("`", "") for line in (folder / "report.md").read_text().splitlines()
                   if line.startswith("#")]
    assert parser.headings == md_headings  # the same sections as report.md
    assert "<strong>Recommendation.</strong>" in page and "<code>afl</code>" in page


def test_report_without_matplotlib_has_no_figures(tmp_path, fake_comparison, monkeypatch):
    from skimb.utils import _optional

    monkeypatch.setattr(_optional, "has_optional", lambda name: name != "matplotlib")
    data, results, _ = fake_comparison
    folder = _write(tmp_path, data, results).parent
    assert not list(folder.glob("*.png"))
    assert "<img" not in (folder / "report.html").read_text() and "matplotlib is not installed" in (
        folder / "report.md").read_text()
    assert "## The rarest classes" in (folder / "report.md").read_text()  # the tables stay


def test_confusion_is_left_out_for_other_tasks():
    assert _confusion("token", [["B-PER"]], [["B-PER"]], ["PER"]) is None
    assert _context(Bunch(task="multilabel"))["min_class_count"] == 0


def test_plan_keeps_a_vote_with_the_methods_its_members_repeat():
    # the vote's members are focal_calora's and focal_hamr's estimators: under --jobs it must run in
    # their worker, where it loads both fits, not train them again in a worker of its own
    methods = get_methods(["ce", "focal", "focal_calora", "focal_hamr", "vote_focal_calora_hamr", "hamr"], "token")
    context = {"task": "token", "min_class_count": 5, "n_train": 100, "catch_all": "O"}
    runs = _build_runs(methods, Budget(), 0, context, done={})
    tasks = [[run.method for run in task] for task in _plan([runs], split_seeds=True)]
    assert tasks == [["focal_calora", "focal", "focal_hamr", "vote_focal_calora_hamr"], ["ce"], ["hamr"]]
    text = get_methods(["weighted_ce", "wce_tuned", "vote_wce_hamr_tuned", "hamr", "afl"], "multiclass")
    runs = _build_runs(text, Budget(), 0, {"task": "multiclass", "min_class_count": 5}, done={})
    tasks = [[run.method for run in task] for task in _plan([runs], split_seeds=True)]
    # weighted_ce trains on every row, wce_tuned (and the vote's weighted member) on 90%: no stage 1 in common
    assert tasks == [["weighted_ce"], ["wce_tuned", "vote_wce_hamr_tuned", "hamr"], ["afl"]]
    runs[2].estimator, runs[2].build_error = None, "ValueError: boom"  # a vote that failed to build: alone
    tasks = [[run.method for run in task] for task in _plan([runs], split_seeds=True)]
    assert tasks == [["weighted_ce"], ["wce_tuned"], ["vote_wce_hamr_tuned"], ["hamr"], ["afl"]]  # nothing bridges them


@pytest.mark.parametrize("lr, lrs, shown", [
    ("auto", {"ce": [2e-4], "weighted_ce": [2e-4, 0.03]}, "lr=auto (0.0002, 0.03)"),
    ("auto", {}, "lr=auto,"),  # no fine-tuning run: nothing resolved
    (5e-5, {"ce": [5e-5]}, "lr=5e-05,"),
])
def test_report_header_names_the_rates_auto_resolved_to(tmp_path, fake_comparison, lr, lrs, shown):
    data, results, _ = fake_comparison
    for r in results:
        r.lrs = lrs.get(r.method, [])
    results[-1].error, results[-1].lrs = "RuntimeError: failed", [0.5]  # a failed run's rate is not shown
    methods = get_methods(["weighted_ce", "ce", "afl"], "multiclass")
    path = write_report(tmp_path / "rep", data=data, methods=methods, budget=Budget(lr=lr), seeds=[0, 1],
                        results=results, wall_s=3.0)
    report = path.read_text()
    assert shown in report and "0.5" not in report.split("seeds:")[0]


def test_a_method_name_with_a_path_separator_still_gets_its_report(tmp_path, fake_comparison):
    # a Method made by hand bypasses register_method's name check: its figure must stay in the folder
    data, results, _ = fake_comparison
    for res in results:
        res.method = {"afl": "lr/balanced", "ce": "../ce"}.get(res.method, res.method)
    path = _write(tmp_path, data, results)
    assert path == tmp_path / "rep" / "report.md" and (tmp_path / "rep" / "report.html").is_file()
    assert json.loads((path.parent / "results.json").read_text())["best"] == "lr/balanced"
    assert (path.parent / "confusion_lr_balanced.png").stat().st_size > 0
    assert "](confusion_lr_balanced.png)" in path.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rep"]  # nothing written outside the report folder


def test_figure_names_stay_plain_and_distinct():
    from skimb.compare._report import _figure_name

    assert _figure_name("confusion", "lr/balanced") == "confusion_lr_balanced.png"
    assert _figure_name("confusion", "../x") == "confusion_.._x.png"
    assert _figure_name("confusion", "a/b", taken=["confusion_a_b.png"]) == "confusion_a_b_2.png"


@pytest.mark.parametrize("test_size, part", [(None, "test"), (3, "test"), (50, "training")])
def test_a_split_that_leaves_a_class_without_a_test_or_training_row_is_refused(tmp_path, test_size, part):
    # 50/2/2 rows: 20% (11 rows) or 3 rows held out round a 2-row class to no test row, as 50 to no training row
    rows = [[f"text {i}", "big"] for i in range(50)] + [[f"a {i}", "a"] for i in range(2)] + \
        [[f"b {i}", "b"] for i in range(2)]
    path = _write_csv(tmp_path / "few.csv", rows, ["text", "label"])
    with pytest.raises(ValueError, match=f"without a {part} row") as info:
        load_table(path, test_size=test_size)
    assert "few.csv" in str(info.value) and "'split' column" in str(info.value)


def test_report_md_is_utf8_whatever_the_locale(tmp_path):
    # report.md was written in the locale's encoding: under an ASCII (or a Windows code page) locale its
    # "±" or a class name such as "café ☕" raised UnicodeEncodeError once every run had finished
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = (
        "import numpy as np, sys\n"
        "from sklearn.utils import Bunch\n"
        "from skimb.compare import Budget\n"
        "from skimb.compare._registry import get_methods\n"
        "from skimb.compare._report import write_report\n"
        "from skimb.compare._runner import RunResult, score\n"
        "y = np.array(['caf\\u00e9 \\u2615'] * 4 + ['tea'] * 2)\n"  # ASCII on the command line
        "results = []\n"
        "for method, pred in (('ce', y), ('weighted_ce', y[::-1])):\n"
        "    res = RunResult(method, 0, train_s=1.0, predict_s=0.1, peak_mib=1.0)\n"
        "    res.metrics, res.per_class, res.quartile_f1 = score('multiclass', y, pred, y_train=y)\n"
        "    res.per_class_f1 = {k: v['f1'] for k, v in res.per_class.items()}\n"
        "    results.append(res)\n"
        "data = Bunch(name='caf\\u00e9', task='multiclass', X_train=['t'] * 6, y_train=y, X_test=['t'] * 6, y_test=y,\n"
        "             target_names=sorted(set(y)))\n"
        "write_report(sys.argv[1], data=data, methods=get_methods(['ce', 'weighted_ce'], 'multiclass'),\n"
        "             budget=Budget(), seeds=[0], results=results, wall_s=1.0)\n"
    )
    env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0",
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "rep")], env=env, capture_output=True,
                          text=True, encoding="utf-8", errors="replace", timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    report = (tmp_path / "rep" / "report.md").read_text(encoding="utf-8")
    assert "café ☕" in report and "±" in report
