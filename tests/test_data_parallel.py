"""Data-parallel training of one model: the same script under ``torchrun`` with two CPU processes
(gloo) trains one model, identical in both processes, each on its half of the batches."""

from __future__ import annotations

import json
import socket
from pathlib import Path
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback

from skimb import TransformerClassifier
from skimb.training._distributed import RankShard, average_gradients, data_parallel_world, process_device

SCRIPT = """
import json, sys, numpy as np, torch
sys.path.insert(0, sys.argv[5])
from skimb import TransformerClassifier
from skimb.training._distributed import data_parallel_world
from test_data_parallel import Batches

data = json.load(open(sys.argv[1]))
X, y = data["X"], np.array(data["y"])
seen = Batches()
params = dict(max_epochs=3, batch_size=4, lr=5e-3, random_state=0, callbacks=[seen], n_threads=1, device="cpu")
mode = sys.argv[3]
if mode == "hamr":
    try:
        TransformerClassifier(sys.argv[2], training="hamr", **params).fit(X, y)
    except ValueError as exc:
        json.dump({"error": str(exc)}, open(sys.argv[4] + f"_{torch.distributed.get_rank()}.json", "w"))
    sys.exit(0)
if mode == "unseeded":  # each process draws its own seed: process 0's is used by both
    params["random_state"], mode = None, "linear"
clf = TransformerClassifier(sys.argv[2], head=mode, **params).fit(X, y)
rank, world = data_parallel_world()
json.dump({"rank": rank, "world": world, "batches": seen.indices, "proba": clf.predict_proba(X).tolist(),
           "accuracy": float((clf.predict(X) == y).mean())}, open(sys.argv[4] + f"_{rank}.json", "w"))
"""


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(tmp_path, tiny_bert, toy_data, mode):
    X, y = toy_data
    (tmp_path / "data.json").write_text(json.dumps({"X": list(X), "y": y.tolist()}))
    (tmp_path / "script.py").write_text(textwrap.dedent(SCRIPT))
    out = tmp_path / mode
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={_free_port()}",
           str(tmp_path / "script.py"), str(tmp_path / "data.json"), tiny_bert, mode, str(out), str(Path(__file__).parent)]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env={"OMP_NUM_THREADS": "1",
                                                                              **__import__("os").environ})
    assert run.returncode == 0, run.stderr[-3000:]
    return [json.loads((tmp_path / f"{mode}_{r}.json").read_text()) for r in (0, 1)]


class Batches(Callback):
    """The sample indices of each training batch (imported by the launched script too)."""

    def initialize(self):
        self.indices = []
        return self

    def on_batch_begin(self, net, batch=None, training=False, **kwargs):
        if training:
            self.indices.append(batch[0]["index"].tolist())


@pytest.mark.parametrize("mode", ["linear", "calora", "unseeded"])
def test_two_processes_train_one_model(tmp_path, tiny_bert, toy_data, mode):
    ranks = _torchrun(tmp_path, tiny_bert, toy_data, mode)
    assert [r["rank"] for r in ranks] == [0, 1] and {r["world"] for r in ranks} == {2}
    # one model: the same probabilities in both processes
    np.testing.assert_array_equal(np.array(ranks[0]["proba"]), np.array(ranks[1]["proba"]))
    if mode == "unseeded":
        per_epoch = len(ranks[0]["batches"]) // 3
        first = [{i for b in r["batches"][:per_epoch] for i in b} for r in ranks]
        assert not first[0] & first[1]  # one batch order, shared out: no sample twice in an epoch
        return
    # each process trained on its half of every epoch: disjoint batches that, together, are the
    # single-process run's batches (the last incomplete round dropped)
    X, y = toy_data
    seen = Batches()
    single = TransformerClassifier(tiny_bert, head=mode, max_epochs=3, batch_size=4, lr=5e-3, random_state=0,
                                   callbacks=[seen], n_threads=1).fit(X, y)
    per_epoch = len(seen.indices) // 3
    for epoch in range(3):
        alone = seen.indices[epoch * per_epoch:(epoch + 1) * per_epoch]
        rounds = len(alone) // 2
        for r in (0, 1):
            mine = ranks[r]["batches"][epoch * rounds:(epoch + 1) * rounds]
            assert mine == alone[r::2][:rounds]
    # quality within noise of the single-process run (half the steps at twice the batch)
    assert ranks[0]["accuracy"] >= (single.predict(X) == y).mean() - 0.15


def test_hamr_refuses_data_parallel_with_a_clear_error(tmp_path, tiny_bert, toy_data):
    ranks = _torchrun(tmp_path, tiny_bert, toy_data, "hamr")
    assert all("does not train data-parallel" in r["error"] for r in ranks)


def test_single_process_helpers():
    assert data_parallel_world() == (0, 1)
    p = torch.nn.Parameter(torch.ones(3))
    p.grad = torch.full((3,), 2.0)
    average_gradients([p], 1)  # one process: untouched
    assert p.grad.tolist() == [2.0, 2.0, 2.0]
    with pytest.raises(ValueError, match="cannot be shared by 3 processes"):
        list(RankShard([[0, 1], [2]], rank=0, world_size=3))
    assert len(RankShard([[0], [1], [2], [3], [4]], rank=0, world_size=2)) == 2


@pytest.mark.parametrize("device, backend", [("cpu", "gloo"), ("cuda", "nccl")])
def test_the_estimators_device_picks_the_backend(monkeypatch, device, backend):
    # a CPU fit under torchrun on a machine with GPUs trains over gloo, not NCCL
    dist = torch.distributed
    chosen = []
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(dist, "is_initialized", lambda: False)
    monkeypatch.setattr(dist, "is_nccl_available", lambda: True)
    monkeypatch.setattr(dist, "init_process_group", lambda b: chosen.append(b))
    monkeypatch.setattr(dist, "get_rank", lambda: 1)
    monkeypatch.setattr(dist, "get_world_size", lambda: 2)
    assert data_parallel_world(device) == (1, 2) and chosen == [backend]


def test_a_process_without_a_gpu_of_its_own_is_a_clear_error(monkeypatch):
    current = []
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "set_device", current.append)
    monkeypatch.setenv("LOCAL_RANK", "0")
    assert process_device("cuda", world_size=2) == "cuda:0" and current == [0]  # NCCL's collectives run there
    monkeypatch.setenv("LOCAL_RANK", "1")
    with pytest.raises(ValueError, match=r"process 1 \(LOCAL_RANK\) has no GPU.*sees 1.*--nproc_per_node=1.*device='cpu'"):
        process_device("cuda", world_size=2)
    with pytest.raises(ValueError, match="every data-parallel process on one GPU: use device='cuda'"):
        process_device("cuda:0", world_size=2)
    assert process_device("cuda", world_size=1) == "cuda" and process_device("cpu", world_size=2) == "cpu"
    assert current == [0]


def test_a_launch_without_a_gpu_per_process_fails_before_the_group_exists(monkeypatch):
    dist = torch.distributed
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(dist, "is_initialized", lambda: False)
    monkeypatch.setattr(dist, "init_process_group", lambda b: pytest.fail("the group was initialised"))
    with pytest.raises(ValueError, match="has no GPU of its own"):
        data_parallel_world("cuda")
