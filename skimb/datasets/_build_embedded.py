"""Regenerate the data files embedded in ``skimb/datasets/data/``.

Run from the repository root (needs the ``shared/data`` folder next to the
checkout, or ``SKIMB_DATA_DIR``, or a path given as the only argument)::

    python skimb/datasets/_build_embedded.py [DATA_HOME]

It writes, deterministically (gzip without time stamp or file name):

* ``goemotions_ekman_{train,dev,test}.tsv.gz``: the GoEmotions rows that have
  exactly one Ekman label, as ``label<TAB>text`` under a ``label<TAB>text``
  header (the comment ids are dropped);
* ``sms_spam.tsv.gz``: the SMS Spam Collection as ``label<TAB>text`` under the
  same header.

This module is not imported by the package; it uses the standard library only.
"""

import gzip
import io
import os
import sys
from pathlib import Path

OUT_DIR = Path(__file__).resolve().parent / "data"
HEADER = "label\ttext\n"


def _find_data_home(argv):
    if len(argv) > 1:
        return Path(argv[1])
    if os.environ.get("SKIMB_DATA_DIR"):
        return Path(os.environ["SKIMB_DATA_DIR"])
    return Path(__file__).resolve().parents[3] / "shared" / "data"


def _write_gz(path, rows):
    buf = io.BytesIO()
    # mtime=0 and no file name: the output depends on the content only
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as gz:
        gz.write(HEADER.encode("utf-8"))
        for label, text in rows:
            if "\t" in label or "\n" in label or "\n" in text or "\r" in text:
                raise ValueError(f"cannot store {label!r} / {text!r:.60} as one TSV line")
            gz.write(f"{label}\t{text}\n".encode("utf-8"))
    path.write_bytes(buf.getvalue())
    return len(buf.getvalue())


def build_goemotions_ekman(data_home):
    src = data_home / "goemotions" / "ekman"
    names = [ln.strip() for ln in (src / "labels.txt").read_text("utf-8").splitlines() if ln.strip()]
    for split in ("train", "dev", "test"):
        rows = []
        n_all = 0
        for line in (src / f"{split}.tsv").read_text("utf-8").splitlines():
            if not line.strip():
                continue
            n_all += 1
            text, ids, _ = line.rsplit("\t", 2)
            ids = ids.split(",")
            if len(ids) == 1:
                rows.append((names[int(ids[0])], text))
        size = _write_gz(OUT_DIR / f"goemotions_ekman_{split}.tsv.gz", rows)
        print(f"goemotions_ekman {split}: kept {len(rows)} of {n_all} rows, {size} bytes")


def build_sms_spam(data_home):
    src = data_home / "sms_spam" / "SMSSpamCollection.tsv"
    lines = src.read_text("utf-8").splitlines()[1:]  # first line is a header
    rows = []
    for line in lines:
        if line.strip():
            label, text = line.split("\t", 1)
            rows.append((label.strip(), text))
    size = _write_gz(OUT_DIR / "sms_spam.tsv.gz", rows)
    print(f"sms_spam: {len(rows)} rows, {size} bytes")


if __name__ == "__main__":
    home = _find_data_home(sys.argv)
    if not home.is_dir():
        sys.exit(f"data folder {home} not found; pass it as the first argument")
    OUT_DIR.mkdir(exist_ok=True)
    build_goemotions_ekman(home)
    build_sms_spam(home)
