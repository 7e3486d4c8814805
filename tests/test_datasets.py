"""Tests for skimb.datasets: readers, embedded loaders, load_dataset, make_imbalance."""

import gzip
import json
import os
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from skimb.datasets import (
    get_data_home,
    list_datasets,
    load_dataset,
    load_goemotions_ekman,
    load_sms_spam,
    make_imbalance,
    read_conll,
    read_goemotions_tsv,
    read_humaid_json,
    read_jsonl_ner,
    read_sms_spam,
)
from skimb.datasets import _base

BUNCH_KEYS = {"X_train", "y_train", "X_dev", "y_dev", "X_test", "y_test",
              "target_names", "task", "name", "DESCR"}


def write(path, text, *, gz=False):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        with gzip.open(path, "wt", encoding="utf-8") as fh:
            fh.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def humaid(records):
    return json.dumps(
        [{"text": t, "label": i, "label_text": lab} for i, (t, lab) in enumerate(records)], indent=2
    )


# =========================================================================== readers
class TestReadHumaidJson:
    def test_reads_texts_and_label_text(self, tmp_path):
        p = write(tmp_path / "train.json", humaid([("a tweet", "x"), ("b tweet", "y")]))
        before = p.read_bytes()
        texts, labels = read_humaid_json(p)
        assert texts == ["a tweet", "b tweet"]
        assert labels == ["x", "y"]
        assert p.read_bytes() == before

    def test_gzip_and_str_path(self, tmp_path):
        p = write(tmp_path / "train.json.gz", humaid([("t", "lab")]), gz=True)
        assert read_humaid_json(str(p)) == (["t"], ["lab"])

    def test_label_fallback_when_no_label_text(self, tmp_path):
        p = write(tmp_path / "a.json", json.dumps([{"text": "t", "label": 3}]))
        assert read_humaid_json(p) == (["t"], ["3"])

    def test_missing_file(self, tmp_path):
        with pytest.raises(FileNotFoundError, match="No such file"):
            read_humaid_json(tmp_path / "nope.json")

    def test_directory(self, tmp_path):
        with pytest.raises(IsADirectoryError, match="directory"):
            read_humaid_json(tmp_path)

    def test_invalid_json_names_line(self, tmp_path):
        p = write(tmp_path / "bad.json", '[\n{"text": "a", "label_text": "x"},\n{"text": "b" "label_text"}\n]')
        with pytest.raises(ValueError, match=r"bad\.json: invalid JSON at line 3"):
            read_humaid_json(p)

    def test_json_lines_of_texts_get_a_remedy_that_reads_them(self, tmp_path):
        # the hint named read_jsonl_ner alone, which refuses lines without 'tokens' and 'ner_tags'
        p = write(tmp_path / "lines.json", '{"text": "a", "label": "x"}\n{"text": "b", "label": "y"}\n')
        with pytest.raises(ValueError, match=r"JSON lines of texts and labels: skimb compare --data"):
            read_humaid_json(p)

    def test_not_an_array(self, tmp_path):
        p = write(tmp_path / "obj.json", '{"text": "a"}')
        with pytest.raises(ValueError, match="expected a JSON array"):
            read_humaid_json(p)

    @pytest.mark.parametrize("field,value", [("label", "NaN"), ("label_text", "NaN"), ("label", "-Infinity")])
    def test_a_non_finite_label_is_refused_not_made_a_class(self, tmp_path, field, value):
        p = write(tmp_path / "nan.json", f'[{{"text": "a", "label": 1}}, {{"text": "b", "{field}": {value}}}]')
        with pytest.raises(ValueError, match=r"nan\.json: record 1 has the label -?(nan|inf), which is no class"):
            read_humaid_json(p)

    def test_a_blank_label_text_names_no_class_the_label_does(self, tmp_path):
        p = write(tmp_path / "r.json", json.dumps([{"text": "a", "label_text": "", "label": 3},
                                                    {"text": "b", "label_text": "x", "label": 4}]))
        assert read_humaid_json(p) == (["a", "b"], ["3", "x"])

    @pytest.mark.parametrize(
        "record, msg",
        [({"label_text": "x"}, "record 1 has no 'text'"),
         ({"text": "b"}, "record 1 has neither 'label_text' nor 'label'"),
         ({"text": "b", "label_text": " "}, r"record 1 has neither 'label_text' nor 'label' \(its 'label_text' is ' '\)"),
         ({"text": 5, "label_text": "x"}, "record 1 has a non-string 'text'")],
    )
    def test_bad_records(self, tmp_path, record, msg):
        p = write(tmp_path / "r.json", json.dumps([{"text": "a", "label_text": "x"}, record]))
        with pytest.raises(ValueError, match=msg):
            read_humaid_json(p)


class TestReadGoEmotionsTsv:
    def test_ids_and_names(self, tmp_path):
        p = write(tmp_path / "train.tsv", "Great!\t1\tid1\nMeh. Wow\t0,2\tid2\n\n")
        lab = write(tmp_path / "labels.txt", "anger\njoy\nsurprise\n")
        assert read_goemotions_tsv(p) == (["Great!", "Meh. Wow"], [[1], [0, 2]])
        texts, labels = read_goemotions_tsv(p, lab)
        assert texts == ["Great!", "Meh. Wow"]
        assert labels == [["joy"], ["anger", "surprise"]]

    def test_two_columns_and_tab_in_text(self, tmp_path):
        p = write(tmp_path / "t.tsv", "no id column\t2\nwith\ttab\t1\tid9\n")
        assert read_goemotions_tsv(p) == (["no id column", "with\ttab"], [[2], [1]])

    def test_crlf(self, tmp_path):
        p = tmp_path / "crlf.tsv"
        p.write_bytes(b"a\t1\tx\r\nb\t0\ty\r\n")
        assert read_goemotions_tsv(p) == (["a", "b"], [[1], [0]])

    def test_malformed_line(self, tmp_path):
        p = write(tmp_path / "t.tsv", "ok\t1\tid\nno label column here\n")
        with pytest.raises(ValueError, match="line 2 is malformed"):
            read_goemotions_tsv(p)

    def test_bad_ids(self, tmp_path):
        p = write(tmp_path / "t.tsv", "ok\t1\tid\nbad\tjoy\tid2\n")
        with pytest.raises(ValueError, match="line 2"):
            read_goemotions_tsv(p)

    def test_id_out_of_range(self, tmp_path):
        p = write(tmp_path / "t.tsv", "ok\t1\tid\nbad\t0,7\tid2\n")
        lab = write(tmp_path / "labels.txt", "a\nb\n")
        with pytest.raises(ValueError, match="line 2 has label id 7.*only 2 labels"):
            read_goemotions_tsv(p, lab)

    def test_missing_labels_file(self, tmp_path):
        p = write(tmp_path / "t.tsv", "ok\t1\tid\n")
        with pytest.raises(FileNotFoundError):
            read_goemotions_tsv(p, tmp_path / "labels.txt")


class TestReadConll:
    def test_sentences_docstart_and_columns(self, tmp_path):
        p = write(
            tmp_path / "train.txt",
            "-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\n\n\n"
            "-DOCSTART- O\nPeter\tB-PER\nBlackburn\tI-PER\n",
        )
        tokens, tags = read_conll(p)
        assert tokens == [["EU", "rejects"], ["Peter", "Blackburn"]]
        assert tags == [["B-ORG", "O"], ["B-PER", "I-PER"]]

    def test_trailing_spaces_and_no_final_blank(self, tmp_path):
        p = write(tmp_path / "t.txt", "EU B-ORG \nrejects O ")
        assert read_conll(p) == ([["EU", "rejects"]], [["B-ORG", "O"]])

    def test_single_column_line(self, tmp_path):
        p = write(tmp_path / "t.txt", "EU B-ORG\n\nlonely\n")
        with pytest.raises(ValueError, match="line 3 has a single column"):
            read_conll(p)

    def test_missing(self, tmp_path):
        with pytest.raises(FileNotFoundError):
            read_conll(tmp_path / "train.txt")


class TestReadJsonlNer:
    def test_string_tags(self, tmp_path):
        p = write(tmp_path / "train.json",
                  '{"tokens": ["cheap", "pizza"], "ner_tags": ["B-Price", "B-Dish"]}\n\n'
                  '{"tokens": ["hi"], "ner_tags": ["O"]}\n')
        assert read_jsonl_ner(p) == ([["cheap", "pizza"], ["hi"]], [["B-Price", "B-Dish"], ["O"]])

    def test_int_tags_with_and_without_names(self, tmp_path):
        p = write(tmp_path / "t.jsonl", '{"tokens": ["a", "b"], "ner_tags": [0, 2]}\n')
        assert read_jsonl_ner(p) == ([["a", "b"]], [[0, 2]])
        assert read_jsonl_ner(p, tag_names=("O", "B-X", "I-X")) == ([["a", "b"]], [["O", "I-X"]])

    def test_mismatched_counts(self, tmp_path):
        p = write(tmp_path / "t.jsonl",
                  '{"tokens": ["a"], "ner_tags": ["O"]}\n{"tokens": ["a", "b", "c"], "ner_tags": ["O", "O"]}\n')
        with pytest.raises(ValueError, match="line 2 has 3 tokens but 2 tags"):
            read_jsonl_ner(p)

    def test_invalid_json_line(self, tmp_path):
        p = write(tmp_path / "t.jsonl", '{"tokens": ["a"], "ner_tags": ["O"]}\n{"tokens": ["a"],\n')
        with pytest.raises(ValueError, match="line 2 is not valid JSON"):
            read_jsonl_ner(p)

    def test_missing_fields(self, tmp_path):
        p = write(tmp_path / "t.jsonl", '{"words": ["a"], "ner_tags": ["O"]}\n')
        with pytest.raises(ValueError, match="line 1 lacks 'tokens'"):
            read_jsonl_ner(p)

    def test_tag_id_without_name(self, tmp_path):
        p = write(tmp_path / "t.jsonl", '{"tokens": ["a"], "ner_tags": [5]}\n')
        with pytest.raises(ValueError, match="line 1: tag id 5 has no name"):
            read_jsonl_ner(p, tag_names=["O", "B-X"])

    def test_tag_names_must_be_sequence(self, tmp_path):
        p = write(tmp_path / "t.jsonl", '{"tokens": ["a"], "ner_tags": [0]}\n')
        with pytest.raises(TypeError, match="tag_names"):
            read_jsonl_ner(p, tag_names="O")


class TestReadSmsSpam:
    def test_header_skipped_and_tabs_in_text(self, tmp_path):
        p = write(tmp_path / "sms.tsv", "Label\tSMS\nham\tsee\tyou\nspam\tWIN NOW\n\n")
        assert read_sms_spam(p) == (["see\tyou", "WIN NOW"], ["ham", "spam"])

    def test_gzip(self, tmp_path):
        p = write(tmp_path / "sms.tsv.gz", "label\ttext\nham\thi\n", gz=True)
        assert read_sms_spam(p) == (["hi"], ["ham"])

    def test_line_without_tab(self, tmp_path):
        p = write(tmp_path / "sms.tsv", "Label\tSMS\nham\tok\nno tab here\n")
        with pytest.raises(ValueError, match="line 3 is malformed"):
            read_sms_spam(p)

    def test_missing(self, tmp_path):
        with pytest.raises(FileNotFoundError, match="sms.tsv"):
            read_sms_spam(tmp_path / "sms.tsv")

    @pytest.mark.parametrize("content, expected", [
        # the UCI SMSSpamCollection file has no header: its first line is the first message
        ("ham\tGo until jurong point\nham\tOk lar\nspam\tWIN\n",
         (["Go until jurong point", "Ok lar", "WIN"], ["ham", "ham", "spam"])),
        ("spam\tFree entry\n", (["Free entry"], ["spam"])),
        # other labels: a first label that recurs is a class, one that does not a column name
        ("joy\tyay\nfear\tboo\njoy\twow\n", (["yay", "boo", "wow"], ["joy", "fear", "joy"])),
        ("label\ttext\njoy\tyay\nfear\tboo\n", (["yay", "boo"], ["joy", "fear"])),
        ("just a title line\nham\thi\n", (["hi"], ["ham"])),
    ])
    def test_the_first_line_is_skipped_only_when_it_is_a_header(self, tmp_path, content, expected):
        assert read_sms_spam(write(tmp_path / "SMSSpamCollection", content)) == expected


def test_non_path_argument():
    with pytest.raises(TypeError, match="path must be"):
        read_conll(123)


# =========================================================================== data home
class TestGetDataHome:
    def test_env_var_wins(self, monkeypatch, tmp_path):
        monkeypatch.setenv("SKIMB_DATA_DIR", str(tmp_path / "elsewhere"))
        assert get_data_home() == tmp_path / "elsewhere"

    def test_search_order(self, monkeypatch, tmp_path):
        monkeypatch.delenv("SKIMB_DATA_DIR", raising=False)
        # pretend the package lives in <tmp>/repo/skimb/datasets/_base.py
        monkeypatch.setattr(_base, "__file__", str(tmp_path / "repo" / "skimb" / "datasets" / "_base.py"))
        work = tmp_path / "work" / "sub"
        work.mkdir(parents=True)
        monkeypatch.chdir(work)
        assert get_data_home() is None
        (tmp_path / "work" / "shared" / "data").mkdir(parents=True)
        assert get_data_home() == tmp_path / "work" / "shared" / "data"  # ../shared/data
        (work / "shared" / "data").mkdir(parents=True)
        assert get_data_home() == work / "shared" / "data"  # ./shared/data first
        (tmp_path / "shared" / "data").mkdir(parents=True)
        assert get_data_home() == tmp_path / "shared" / "data"  # next to the checkout first


# =========================================================================== embedded data
def class_counts(y):
    return Counter(np.asarray(y).tolist())


class TestGoEmotionsEkman:
    def test_shapes_and_labels(self):
        data = load_goemotions_ekman()
        assert set(data) == BUNCH_KEYS
        assert (data.task, data.name) == ("multiclass", "goemotions_ekman")
        assert data.target_names == ["anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise"]
        for split, n in (("train", 39555), ("dev", 4946), ("test", 4968)):
            X, y = data[f"X_{split}"], data[f"y_{split}"]
            assert isinstance(X, list) and len(X) == n and all(isinstance(t, str) for t in X[:50])
            assert isinstance(y, np.ndarray) and y.ndim == 1 and y.dtype.kind == "U" and len(y) == n
            assert sorted(set(y.tolist())) == data.target_names
        counts = class_counts(data.y_train)
        assert counts["joy"] == 15216 and counts["disgust"] == 498
        assert "CC BY 4.0" in data.DESCR

    def test_returns_fresh_containers(self):
        a = load_goemotions_ekman()
        a.X_train[0] = "changed"
        a.y_train[0] = "fear"
        b = load_goemotions_ekman()
        assert b.X_train[0] != "changed"
        assert b.X_train[0] == load_goemotions_ekman().X_train[0]

    def test_subsample_keeps_imbalance(self):
        full = load_goemotions_ekman()
        small = load_goemotions_ekman(subsample=2000, random_state=0)
        for split in ("train", "dev", "test"):
            assert len(small[f"X_{split}"]) == 2000
        c_full, c_small = class_counts(full.y_train), class_counts(small.y_train)
        assert set(c_small) == set(c_full)
        assert min(c_small.values()) >= 5
        for lab, n in c_full.items():  # proportions kept to within one example
            assert abs(c_small[lab] - n * 2000 / len(full.y_train)) <= 1
        ir_full = max(c_full.values()) / min(c_full.values())
        ir_small = max(c_small.values()) / min(c_small.values())
        assert abs(ir_small - ir_full) / ir_full < 0.1
        # pairs stay aligned: every subsampled text carries its original label
        lookup = {}
        for t, lab in zip(full.X_train, full.y_train.tolist()):
            lookup.setdefault(t, set()).add(lab)  # a few texts occur twice
        assert all(lab in lookup[t] for t, lab in zip(small.X_train, small.y_train.tolist()))

    def test_subsample_deterministic(self):
        a = load_goemotions_ekman(subsample={"train": 300}, random_state=1)
        b = load_goemotions_ekman(subsample={"train": 300}, random_state=1)
        c = load_goemotions_ekman(subsample={"train": 300}, random_state=2)
        assert a.X_train == b.X_train and np.array_equal(a.y_train, b.y_train)
        assert a.X_train != c.X_train
        assert len(a.X_test) == 4968 and len(a.X_dev) == 4946  # not named: kept whole

    def test_tiny_subsample_keeps_every_class(self):
        small = load_goemotions_ekman(subsample={"train": 20}, random_state=0)
        c = class_counts(small.y_train)
        assert len(c) == 7 and min(c.values()) == 5

    def test_fraction_subsample(self):
        small = load_goemotions_ekman(subsample={"test": 0.1})
        assert len(small.X_test) == round(0.1 * 4968)

    @pytest.mark.parametrize(
        "subsample, exc, msg",
        [({"tran": 10}, ValueError, "subsample keys"),
         (0, ValueError, "at least 1"),
         (1.5, ValueError, r"\(0, 1\]"),
         ("10", TypeError, "must be an int")],
    )
    def test_bad_subsample(self, subsample, exc, msg):
        with pytest.raises(exc, match=msg):
            load_goemotions_ekman(subsample=subsample)


class TestSmsSpam:
    def test_split(self):
        data = load_sms_spam()
        assert set(data) == BUNCH_KEYS
        assert data.X_dev is None and data.y_dev is None
        assert (len(data.X_train), len(data.X_test)) == (4459, 1115)
        assert data.target_names == ["ham", "spam"] and data.task == "multiclass"
        total = class_counts(data.y_train) + class_counts(data.y_test)
        assert total == Counter({"ham": 4827, "spam": 747})
        # stratified: the spam share is the same in both splits
        assert abs((data.y_train == "spam").mean() - (data.y_test == "spam").mean()) < 0.005
        assert "CC BY 4.0" in data.DESCR

    def test_deterministic_and_test_size(self):
        a, b = load_sms_spam(random_state=3), load_sms_spam(random_state=3)
        assert a.X_test == b.X_test
        assert load_sms_spam(random_state=4).X_test != a.X_test
        assert len(load_sms_spam(test_size=500).X_test) == 500
        with pytest.raises(TypeError, match="test_size"):
            load_sms_spam(test_size="0.2")
        assert len(load_sms_spam(test_size=2).X_test) == 2  # the smallest split with both classes

    @pytest.mark.parametrize("test_size, message", [
        (1.0, r"load_sms_spam: test_size as a fraction must be in \(0, 1\)"),
        (2.5, r"load_sms_spam: test_size as a fraction must be in \(0, 1\)"),
        (float("nan"), r"load_sms_spam: test_size as a fraction must be in \(0, 1\)"),
        (0, r"load_sms_spam: test_size=0 holds out 0 of 5574 examples.*hold out 2 to 5572"),
        (1, r"load_sms_spam: test_size=1 holds out 1 of 5574.*one per class \(2 classes\)"),
        (5574, r"load_sms_spam: test_size=5574 holds out 5574 of 5574"),
        (0.0001, r"load_sms_spam: test_size=0.0001 holds out 1 of 5574"),
    ])
    def test_a_test_size_that_leaves_a_split_without_a_class_is_refused(self, test_size, message):
        with pytest.raises(ValueError, match=message):
            load_sms_spam(test_size=test_size)

    def test_subsample(self):
        data = load_sms_spam(subsample={"train": 100})
        assert len(data.X_train) == 100 and class_counts(data.y_train)["spam"] == 13


# =========================================================================== load_dataset
def test_list_datasets():
    names = list_datasets()
    assert names == sorted(names)
    assert {"goemotions_ekman", "sms_spam", "cyclone_idai_2019", "sst5", "goemotions",
            "goemotions_single", "conll2003", "mit_restaurant"} == set(names)


def test_load_dataset_embedded_names():
    a = load_dataset("goemotions_ekman", subsample={"train": 100})
    b = load_goemotions_ekman(subsample={"train": 100})
    assert a.X_train == b.X_train
    assert load_dataset("sms_spam").X_test == load_sms_spam().X_test


def test_load_dataset_unknown_and_missing(tmp_path):
    with pytest.raises(ValueError, match="Unknown data set 'imdb'.*known names"):
        load_dataset("imdb")
    with pytest.raises(FileNotFoundError):
        load_dataset(tmp_path / "nothing_here")
    with pytest.raises(TypeError):
        load_dataset(42)


@pytest.mark.parametrize("name", ["", "  "])
def test_load_dataset_refuses_an_empty_name_rather_than_reading_the_current_folder(name, tmp_path, monkeypatch):
    write(tmp_path / "train.tsv", "label\ttext\nham\thi\nspam\twin\n")
    monkeypatch.chdir(tmp_path)  # a folder load_dataset could read
    with pytest.raises(ValueError, match=r"name_or_path is empty.*'\.' for the current folder"):
        load_dataset(name)
    assert load_dataset(".").X_train == ["hi", "win"]  # the current folder, when asked for


def test_named_data_set_missing_names_env_var(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="SKIMB_DATA_DIR"):
        load_dataset("sst5", data_home=tmp_path)
    monkeypatch.setenv("SKIMB_DATA_DIR", str(tmp_path / "absent"))
    with pytest.raises(FileNotFoundError, match="SKIMB_DATA_DIR"):
        load_dataset("conll2003")


def test_named_data_set_from_env_var(tmp_path, monkeypatch):
    for split in ("train", "dev", "test"):
        write(tmp_path / "cyclone_idai_2019" / f"{split}.json",
              humaid([("a", "x"), ("b", "y"), ("c", "x")]))
    monkeypatch.setenv("SKIMB_DATA_DIR", str(tmp_path))
    data = load_dataset("cyclone_idai_2019")
    assert data.name == "cyclone_idai_2019" and data.task == "multiclass"
    assert data.X_dev == ["a", "b", "c"] and data.y_test.tolist() == ["x", "y", "x"]
    assert data.target_names == ["x", "y"]


def test_folder_humaid(tmp_path):
    write(tmp_path / "train.json", humaid([("a", "x"), ("b", "y")]))
    write(tmp_path / "test.json", humaid([("c", "z")]))
    data = load_dataset(tmp_path)
    assert data.task == "multiclass" and data.X_dev is None
    assert data.target_names == ["x", "y", "z"]
    assert data.X_test == ["c"] and data.y_test.tolist() == ["z"]


def test_folder_jsonl_ner_named_json(tmp_path):
    line = '{"tokens": ["cheap", "pizza"], "ner_tags": ["B-Price", "B-Dish"]}\n'
    write(tmp_path / "train.json", line * 3)
    write(tmp_path / "dev.json", line)
    data = load_dataset(str(tmp_path))
    assert data.task == "token"
    assert data.X_train == [["cheap", "pizza"]] * 3 and data.y_dev == [["B-Price", "B-Dish"]]
    assert data.target_names == ["B-Dish", "B-Price"] and data.X_test is None


def test_folder_conll_with_valid(tmp_path):
    write(tmp_path / "train.txt", "EU B-ORG\nsays O\n\nPeter B-PER\n")
    write(tmp_path / "valid.txt", "Bonn B-LOC\n")
    write(tmp_path / "test.txt", "Bonn B-LOC\n")
    data = load_dataset(tmp_path)
    assert data.task == "token" and data.X_dev == [["Bonn"]]
    assert data.target_names == ["B-LOC", "B-ORG", "B-PER", "O"]


def test_folder_goemotions_multilabel(tmp_path):
    write(tmp_path / "train.tsv", "a\t0\tid1\nb\t1,2\tid2\nc\t2\tid3\n")
    write(tmp_path / "labels.txt", "joy\nanger\nneutral\n")
    data = load_dataset(tmp_path)
    assert data.task == "multilabel"
    assert data.target_names == ["joy", "anger", "neutral"]  # labels.txt order = columns
    np.testing.assert_array_equal(data.y_train, [[1, 0, 0], [0, 1, 1], [0, 0, 1]])
    assert data.y_train.dtype.kind == "i"


def test_folder_goemotions_labels_with_a_byte_order_mark(tmp_path):
    write(tmp_path / "train.tsv", "a\t0\tid1\nb\t1\tid2\n")
    (tmp_path / "labels.txt").write_bytes("\ufeffjoy\nanger\n".encode("utf-8"))
    assert load_dataset(tmp_path).target_names == ["joy", "anger"]  # was KeyError: 'joy'


@pytest.mark.parametrize("content, reader, expected", [
    (b"EU B-ORG\rrejects O\r\rPeter B-PER\r", read_conll, ([["EU", "rejects"], ["Peter"]], [["B-ORG", "O"], ["B-PER"]])),
    (b"label\ttext\rham\thi\rspam\twin\r", read_sms_spam, (["hi", "win"], ["ham", "spam"])),
    (b"yay\t1\tid1\rboo\t0\tid2\r", read_goemotions_tsv, (["yay", "boo"], [[1], [0]])),
    (b"a\rb\t1\tid1\nc\t0\tid2\n", read_goemotions_tsv, (["a\rb", "c"], [[1], [0]])),  # a stray \r stays text
])
def test_old_mac_line_ends(tmp_path, content, reader, expected):
    path = tmp_path / "data.txt"
    path.write_bytes(content)
    assert reader(path) == expected  # were one line: a sentence short, no examples, texts run together


def test_goemotions_single_keeps_the_one_label_rows(tmp_path):
    folder = tmp_path / "goemotions" / "original"
    write(folder / "train.tsv", "a\t0\tid1\nb\t1,2\tid2\nc\t2\tid3\nd\t2\tid4\n")
    write(folder / "test.tsv", "e\t0,1\tid5\nf\t1\tid6\n")
    write(folder / "labels.txt", "joy\nanger\nneutral\n")
    data = load_dataset("goemotions_single", data_home=tmp_path)
    assert data.task == "multiclass" and data.name == "goemotions_single"
    assert data.X_train == ["a", "c", "d"] and data.y_train.tolist() == ["joy", "neutral", "neutral"]
    assert data.X_test == ["f"] and data.y_test.tolist() == ["anger"]
    assert data.target_names == ["anger", "joy", "neutral"] and data.X_dev is None


def test_single_files(tmp_path):
    sms = write(tmp_path / "spam" / "collection.tsv", "Label\tSMS\nham\thi\nspam\tWIN\nham\tyo\n")
    data = load_dataset(sms)
    assert data.task == "multiclass" and data.X_train == ["hi", "WIN", "yo"]
    assert data.X_test is None and data.X_dev is None and data.y_test is None
    # a folder holding a single data file is read as that file
    assert load_dataset(tmp_path / "spam").X_train == ["hi", "WIN", "yo"]
    conll = write(tmp_path / "x.conll", "EU B-ORG\n")
    assert load_dataset(conll).y_train == [["B-ORG"]]


@pytest.mark.parametrize("name, content", [
    ("x.txt", ""), ("empty.json", "[]"), ("header.tsv", "Label\tSMS\n")])
def test_a_file_of_no_examples_is_refused(tmp_path, name, content):
    # it loaded as a data set of no classes
    path = write(tmp_path / name, content)
    with pytest.raises(ValueError, match="holds no examples"):
        load_dataset(path)
    write(tmp_path / "folder" / "train.json", '[{"text": "a", "label_text": "x"}]')
    write(tmp_path / "folder" / "test.json", "[]")
    with pytest.raises(ValueError, match=r"test.json holds no examples"):
        load_dataset(tmp_path / "folder")


def test_unrecognised_files(tmp_path):
    write(tmp_path / "a" / "train.json", '{"text": "a", "label": 1}\n')
    with pytest.raises(ValueError, match="without a 'tokens' field"):
        load_dataset(tmp_path / "a")
    write(tmp_path / "b" / "x.csv", "a,b\n")
    write(tmp_path / "b" / "y.csv", "a,b\n")
    with pytest.raises(ValueError, match="no train file found"):
        load_dataset(tmp_path / "b")
    with pytest.raises(ValueError, match="unknown file type"):
        load_dataset(tmp_path / "b" / "x.csv")


def test_token_subsample_keeps_rare_tags(tmp_path):
    lines = ['{"tokens": ["a"], "ner_tags": ["O"]}'] * 200
    lines += ['{"tokens": ["b", "c"], "ner_tags": ["B-X", "O"]}'] * 50
    lines += ['{"tokens": ["d"], "ner_tags": ["B-Rare"]}'] * 6
    write(tmp_path / "train.jsonl", "\n".join(lines) + "\n")
    data = load_dataset(tmp_path, subsample=30, random_state=0)
    assert len(data.X_train) == 30
    tags = Counter(t for s in data.y_train for t in s)
    assert tags["B-Rare"] == 5 and tags["B-X"] >= 5


# =========================================================================== make_imbalance
def toy(counts):
    y = [lab for lab, n in counts.items() for _ in range(n)]
    X = [f"{lab}-{i}" for i, lab in enumerate(y)]
    return X, y


class TestMakeImbalance:
    def test_step_exact_counts(self):
        X, y = toy({"a": 200, "b": 150, "c": 120, "d": 100})
        X_new, y_new = make_imbalance(X, y, profile="step", ratio=10, minority_share=0.5, random_state=0)
        assert Counter(y_new) == {"a": 150, "b": 150, "c": 15, "d": 15}
        assert isinstance(X_new, list) and isinstance(y_new, list)

    def test_step_minority_share(self):
        X, y = toy({"a": 100, "b": 100, "c": 100, "d": 100, "e": 100})
        _, y_new = make_imbalance(X, y, ratio=4, minority_share=0.4, random_state=0)
        # 5 classes, 40% minority: 3 majority of size 100, 2 minority of size 25
        assert Counter(y_new) == {"a": 100, "b": 100, "c": 100, "d": 25, "e": 25}

    def test_longtail_exact_counts(self):
        X, y = toy({"a": 1000, "b": 1000, "c": 1000, "d": 1000, "e": 1000})
        _, y_new = make_imbalance(X, y, profile="longtail", ratio=16, random_state=0)
        # n_i = tail * 16 ** ((4 - i) / 4) with tail = 62: 992, 496, 248, 124, 62
        assert Counter(y_new) == {"a": 992, "b": 496, "c": 248, "d": 124, "e": 62}
        sizes = sorted(Counter(y_new).values(), reverse=True)
        assert sizes[0] / sizes[-1] == 16
        ratios = [sizes[i] / sizes[i + 1] for i in range(4)]
        assert np.allclose(ratios, 2.0)  # exponential decay: constant ratio between neighbours

    @pytest.mark.parametrize("profile, expected", [
        ("step", {"a": 160, "b": 160, "c": 10, "d": 10, "e": 10}),
        ("longtail", {"a": 160, "b": 80, "c": 40, "d": 20, "e": 10}),
    ])
    @pytest.mark.parametrize("cap", [160, 175, np.int64(160)])
    def test_max_per_class_caps_the_head(self, profile, expected, cap):
        X, y = toy({"a": 1000, "b": 1000, "c": 1000, "d": 1000, "e": 1000})
        _, y_new = make_imbalance(X, y, profile=profile, ratio=16, max_per_class=cap, random_state=0)
        assert Counter(y_new) == expected  # 175 is a cap, not a target: the tail stays whole (10)
        # a cap above what the data allow changes nothing
        uncapped = make_imbalance(X, y, profile=profile, ratio=16, random_state=0)
        assert make_imbalance(X, y, profile=profile, ratio=16, max_per_class=10**6, random_state=0) == uncapped

    def test_max_per_class_checked_after_rounding(self):
        X, y = toy({"a": 100, "b": 100})
        # tail 1 gives a head of round(2.4) = 2, within the cap
        _, y_new = make_imbalance(X, y, ratio=2.4, max_per_class=2, random_state=0)
        assert Counter(y_new) == {"a": 2, "b": 1}

    @pytest.mark.parametrize("cap, kwargs, error, match", [
        (15, {}, ValueError, "max_per_class=15 cannot hold a head 16 times a tail of min_per_class=1 "
                             r"\(the head would be 16\); raise max_per_class"),
        (20, {"min_per_class": 2}, ValueError, r"min_per_class=2 \(the head would be 32\)"),
        (0, {}, ValueError, "max_per_class=0 cannot hold"),
        (-5, {}, ValueError, "max_per_class=-5 cannot hold"),
        (2.5, {}, TypeError, "max_per_class must be an int"),
        (True, {}, TypeError, "max_per_class must be an int"),
    ])
    def test_max_per_class_rejected(self, cap, kwargs, error, match):
        X, y = toy({"a": 100, "b": 100})
        with pytest.raises(error, match=match):
            make_imbalance(X, y, profile="longtail", ratio=16, max_per_class=cap, **kwargs)

    @pytest.mark.parametrize("profile", ["step", "longtail"])
    @pytest.mark.parametrize("ratio", [1.0, 2.5, 7, 30])
    def test_ratio_achieved(self, profile, ratio):
        rng = np.random.default_rng(0)
        y = rng.choice(list("abcdef"), size=3000, p=[0.3, 0.25, 0.2, 0.1, 0.1, 0.05]).tolist()
        X = list(range(len(y)))
        _, y_new = make_imbalance(X, y, profile=profile, ratio=ratio, random_state=0)
        c = Counter(y_new)
        assert len(c) == 6
        tail = min(c.values())
        assert abs(max(c.values()) / tail - ratio) <= 0.5 / tail + 1e-12

    def test_head_is_most_frequent_and_ties_by_label(self):
        X, y = toy({"z": 50, "a": 100, "m": 100})
        _, y_new = make_imbalance(X, y, profile="longtail", ratio=4, random_state=0)
        c = Counter(y_new)
        assert c["a"] > c["m"] > c["z"]  # 'a' and 'm' tie: label order decides
        assert c == {"a": 100, "m": 50, "z": 25}

    def test_input_untouched_and_pairs_aligned(self):
        X, y = toy({"a": 60, "b": 30, "c": 10})
        X_arr, y_arr = np.array(X), np.array(y)
        X_copy, y_copy, Xa_copy = list(X), list(y), X_arr.copy()
        X_new, y_new = make_imbalance(X_arr, y_arr, ratio=5, random_state=0)
        assert X == X_copy and y == y_copy
        np.testing.assert_array_equal(X_arr, Xa_copy)
        assert isinstance(X_new, np.ndarray) and isinstance(y_new, np.ndarray)
        assert not np.shares_memory(X_new, X_arr)
        assert all(x.split("-")[0] == lab for x, lab in zip(X_new, y_new))
        assert len(set(X_new.tolist())) == len(X_new)  # without replacement
        # original order preserved
        pos = [X.index(x) for x in X_new]
        assert pos == sorted(pos)

    def test_random_state(self):
        X, y = toy({"a": 100, "b": 100, "c": 100})
        a = make_imbalance(X, y, ratio=5, random_state=42)
        b = make_imbalance(X, y, ratio=5, random_state=42)
        c = make_imbalance(X, y, ratio=5, random_state=43)
        assert a == b and a[0] != c[0]
        rs = np.random.RandomState(0)
        assert make_imbalance(X, y, ratio=5, random_state=rs)[1] == a[1]  # counts are fixed

    def test_int_labels_tuple_and_pandas(self):
        pd = pytest.importorskip("pandas")
        X, y = toy({"a": 40, "b": 20})
        y_int = tuple(0 if lab == "a" else 1 for lab in y)
        X_new, y_new = make_imbalance(tuple(X), y_int, ratio=4, random_state=0)
        assert isinstance(X_new, tuple) and isinstance(y_new, tuple)
        assert Counter(y_new) == {0: 40, 1: 10}
        df, s = pd.DataFrame({"text": X}, index=range(100, 160)), pd.Series(y, index=range(100, 160))
        X_pd, y_pd = make_imbalance(df, s, ratio=4, random_state=0)
        assert isinstance(X_pd, pd.DataFrame) and list(X_pd.index) == list(y_pd.index)
        assert y_pd.value_counts().to_dict() == {"a": 40, "b": 10}
        assert len(df) == 60 and len(s) == 60

    def test_a_pandas_array_y_keeps_its_kind(self):
        # a Categorical came back as a list of labels, its categories and order lost
        pd = pytest.importorskip("pandas")
        X, y = toy({"a": 40, "b": 20})
        cat = pd.Categorical(y, categories=["b", "a", "unused"], ordered=True)
        _, y_new = make_imbalance(X, cat, ratio=4, random_state=0)
        assert isinstance(y_new, pd.Categorical) and list(y_new.categories) == ["b", "a", "unused"] and y_new.ordered
        assert Counter(y_new) == {"a": 40, "b": 10}
        _, y_str = make_imbalance(X, pd.array(y, dtype="string"), ratio=4, random_state=0)
        assert y_str.dtype == "string" and Counter(y_str) == {"a": 40, "b": 10}

    def test_token_lists_as_X(self):
        X = [["tok", str(i)] for i in range(30)]
        y = ["a"] * 20 + ["b"] * 10
        X_new, y_new = make_imbalance(X, y, ratio=10, random_state=0)
        assert Counter(y_new) == {"a": 20, "b": 2} and all(isinstance(x, list) for x in X_new)

    def test_errors(self):
        X, y = toy({"a": 30, "b": 20})
        with pytest.raises(ValueError, match="profile must be one of"):
            make_imbalance(X, y, profile="linear")
        with pytest.raises(ValueError, match="ratio must be >= 1"):
            make_imbalance(X, y, ratio=0.5)
        with pytest.raises(TypeError, match="ratio"):
            make_imbalance(X, y, ratio="10")
        with pytest.raises(ValueError, match=r"minority_share must be in \(0, 1\)"):
            make_imbalance(X, y, minority_share=1.0)
        with pytest.raises(ValueError, match="gives 0 minority classes"):
            make_imbalance(X, y, minority_share=0.2)
        with pytest.raises(ValueError, match="class 'a' needs 100 but has 30"):
            make_imbalance(X, y, ratio=100, min_per_class=1)
        with pytest.raises(ValueError, match="needs 60 but has 30"):
            make_imbalance(X, y, ratio=20, min_per_class=3)
        assert Counter(make_imbalance(X, y, ratio=15, min_per_class=2)[1]) == {"a": 30, "b": 2}
        with pytest.raises(ValueError, match="different lengths"):
            make_imbalance(X[:-1], y)
        with pytest.raises(ValueError, match="at least 2 classes"):
            make_imbalance(X[:30], y[:30])
        with pytest.raises(ValueError, match="min_per_class must be >= 1"):
            make_imbalance(X, y, min_per_class=0)


# =========================================================================== real data folders
@pytest.fixture(scope="module")
def real_data_home():
    home = get_data_home()
    if home is None or not home.is_dir():
        pytest.skip("real data folder not found (set SKIMB_DATA_DIR to ../shared/data)")
    return home


def _need(home, sub):
    if not (home / sub).is_dir():
        pytest.skip(f"{home / sub} not found")


@pytest.mark.integration
@pytest.mark.parametrize(
    "name, sub, task, sizes, n_classes",
    [
        ("cyclone_idai_2019", "cyclone_idai_2019", "multiclass", (2753, 401, 779), 10),
        ("sst5", "sst5", "multiclass", (8544, 1101, 2210), 5),
        ("goemotions", os.path.join("goemotions", "original"), "multilabel", (43410, 5426, 5427), 28),
        ("goemotions_single", os.path.join("goemotions", "original"), "multiclass", (36308, 4548, 4590), 28),
        ("conll2003", "conll2003", "token", (14041, 3250, 3453), 9),
        ("mit_restaurant", "mit_restaurant", "token", (6900, 760, 1521), 17),
    ],
)
def test_real_folders(real_data_home, name, sub, task, sizes, n_classes):
    _need(real_data_home, sub)
    data = load_dataset(name)
    assert set(data) == BUNCH_KEYS and data.task == task and data.name == name
    assert (len(data.X_train), len(data.X_dev), len(data.X_test)) == sizes
    assert len(data.target_names) == n_classes
    if task == "multilabel":
        assert data.y_train.shape == (sizes[0], n_classes)
        counts = data.y_train.sum(axis=0)
        assert counts.max() == 14219 and counts.min() == 77  # README: IR 184.7
        assert data.target_names[-1] == "neutral"
    elif task == "token":
        assert all(len(x) == len(t) for x, t in zip(data.X_train, data.y_train))
        assert "O" in data.target_names
    else:
        c = class_counts(data.y_train)
        assert sorted(c) == data.target_names
        if name == "cyclone_idai_2019":
            assert max(c.values()) == 1308 and min(c.values()) == 13
        if name == "goemotions_single":
            assert c["neutral"] == 12823 and c["grief"] == 39


@pytest.mark.integration
def test_real_conll_content(real_data_home):
    _need(real_data_home, "conll2003")
    data = load_dataset("conll2003", subsample={"train": 400}, random_state=0)
    assert len(data.X_train) == 400 and len(data.X_test) == 3453
    tags = Counter(t for s in data.y_train for t in s)
    assert all(tags[t] >= 5 for t in data.target_names)  # every tag survives the subsample
    assert data.X_test[0] == read_conll(real_data_home / "conll2003" / "test.txt")[0][0]
    one = load_dataset(real_data_home / "conll2003" / "valid.txt")  # a single file: no split
    assert len(one.X_train) == 3250 and one.X_test is None and one.X_dev is None
    assert one.X_train[0][:3] == ["CRICKET", "-", "LEICESTERSHIRE"]


@pytest.mark.integration
def test_real_paths_sniffed(real_data_home):
    _need(real_data_home, "mit_restaurant")
    _need(real_data_home, "sms_spam")
    data = load_dataset(real_data_home / "mit_restaurant")
    assert data.task == "token" and len(data.X_train) == 6900
    sms = load_dataset(real_data_home / "sms_spam")  # single file, no split
    assert len(sms.X_train) == 5574 and sms.X_test is None
    assert class_counts(sms.y_train) == {"ham": 4827, "spam": 747}
    # the embedded copy is the same collection
    emb = load_sms_spam()
    assert sorted(emb.X_train + emb.X_test) == sorted(sms.X_train)


@pytest.mark.integration
def test_real_make_imbalance_on_sst5(real_data_home):
    _need(real_data_home, "sst5")
    data = load_dataset("sst5")
    X_new, y_new = make_imbalance(data.X_train, data.y_train, profile="longtail", ratio=20, random_state=0)
    c = class_counts(y_new)
    assert max(c.values()) == round(20 * min(c.values()))
    assert max(c, key=c.get) == "positive"  # the most frequent SST-5 class stays the head
