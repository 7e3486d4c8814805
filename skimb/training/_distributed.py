"""Data-parallel training of one model across processes (``torchrun``, ``accelerate launch``).

Launched by a launcher that sets ``WORLD_SIZE`` > 1 (or with a ``torch.distributed`` group already
initialised), a fit trains one model in every process: each takes its share of every epoch's
batches (the same seeded batch order everywhere, round-robin), and the gradients are averaged
across processes before gradient clipping and each optimiser step, so that every process holds the
same parameters after every step. The global batch is ``batch_size`` x the number of processes.
Gloo on the CPU, NCCL on CUDA (one GPU per process, ``cuda:LOCAL_RANK``): the estimator's device
picks the backend, so ``device="cpu"`` trains over gloo on a machine with GPUs too.
"""

from __future__ import annotations

import os

import torch

__all__ = ["data_parallel_world", "process_device", "shared_seed", "RankShard", "average_gradients"]


def _dist():
    import torch.distributed as dist

    return dist if dist.is_available() else None


def data_parallel_world(device: str = "cpu") -> tuple[int, int]:
    """``(rank, world_size)`` of this process: from an initialised ``torch.distributed`` group,
    else from the launcher's environment (``WORLD_SIZE`` > 1: the group is initialised here from
    ``MASTER_ADDR``/``MASTER_PORT``, over NCCL for a CUDA ``device``, else gloo), else ``(0, 1)``.

    >>> data_parallel_world()  # not launched by torchrun
    (0, 1)
    """
    dist = _dist()
    if dist is None:
        return 0, 1
    if not dist.is_initialized():
        if int(os.environ.get("WORLD_SIZE", "1") or 1) <= 1:
            return 0, 1
        cuda = torch.device(device).type == "cuda"
        if cuda:
            _own_gpu()  # before the group exists, so that no other process waits on this one
        dist.init_process_group("nccl" if cuda and dist.is_nccl_available() else "gloo")
    return dist.get_rank(), dist.get_world_size()


def _own_gpu() -> int:
    """This process's GPU under a launcher (``LOCAL_RANK``); an error where it has none."""
    local_rank, n_gpus = int(os.environ.get("LOCAL_RANK", 0)), torch.cuda.device_count()
    if local_rank >= n_gpus:
        raise ValueError(f"Data-parallel process {local_rank} (LOCAL_RANK) has no GPU of its own: it sees {n_gpus}. "
                         f"Launch at most {n_gpus} process(es) per machine (torchrun --nproc_per_node={n_gpus}) "
                         "and leave CUDA_VISIBLE_DEVICES to show every process all the GPUs, or train on the CPU "
                         "with device='cpu'.")
    return local_rank


def process_device(device: str, world_size: int) -> str:
    """One GPU per process under a launcher: ``"cuda"`` becomes ``cuda:LOCAL_RANK`` (and the
    process's current device, where NCCL's collectives run); a process without a GPU of its own,
    or one named GPU for every process, is an error (NCCL refuses two processes on one GPU).

    >>> process_device("cpu", world_size=2)
    'cpu'
    """
    if world_size <= 1 or torch.device(device).type != "cuda":
        return device
    if device != "cuda":
        raise ValueError(f"device={device!r} would put every data-parallel process on one GPU: use device='cuda', "
                         "and each process takes the GPU of its LOCAL_RANK.")
    local_rank = _own_gpu()
    torch.cuda.set_device(local_rank)
    return f"cuda:{local_rank}"


def shared_seed(seed: int, world_size: int) -> int:
    """Process 0's seed in every process, so that they agree on the initial weights and the batch
    order even when each drew its own (``random_state=None``)."""
    if world_size <= 1:
        return seed
    box = [int(seed)]
    _dist().broadcast_object_list(box, src=0)
    return int(box[0])


class RankShard:
    """The batches of ``batch_sampler`` that process ``rank`` of ``world_size`` trains on: every
    ``world_size``-th one from ``rank`` on, the same number in every process (a last incomplete
    round is dropped, so that no process waits for a gradient that never comes).

    >>> list(RankShard([[0, 1], [2, 3], [4, 5], [6]], rank=1, world_size=2))
    [[2, 3], [6]]
    >>> list(RankShard([[0, 1], [2, 3], [4]], rank=1, world_size=2))
    [[2, 3]]
    """

    def __init__(self, batch_sampler, rank: int, world_size: int):
        self.batch_sampler = batch_sampler
        self.rank = int(rank)
        self.world_size = int(world_size)

    def __iter__(self):
        batches = list(self.batch_sampler)
        rounds = len(batches) // self.world_size
        if rounds == 0:
            raise ValueError(f"{len(batches)} training batches cannot be shared by {self.world_size} processes; "
                             "lower batch_size or launch fewer processes.")
        return iter(batches[self.rank::self.world_size][:rounds])

    def __len__(self):
        return len(self.batch_sampler) // self.world_size

    def __getattr__(self, name):  # the wrapped sampler's settings (set_draw_weights, ...)
        if name == "batch_sampler":
            raise AttributeError(name)
        return getattr(self.batch_sampler, name)


def average_gradients(params, world_size: int) -> None:
    """Average the gradients of ``params`` across the processes (one all-reduce of a flat
    buffer; a parameter without a gradient counts as zeros, so every process sends the same
    layout)."""
    params = [p for p in params if p.requires_grad]
    if world_size <= 1 or not params:
        return
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    _dist().all_reduce(flat)
    flat /= world_size
    offset = 0
    for p, g in zip(params, grads):
        n = g.numel()
        p.grad = flat[offset:offset + n].view_as(g).clone()
        offset += n
