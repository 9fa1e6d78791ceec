"""Data parallelism across the processes ``torchrun`` starts.

Every process (a *rank*) holds a full copy of the supernet and of the
alphas, reads its own shard of each batch, and after every backward the
gradients are averaged over the ranks, so the copies never drift apart.
The weights' forward and backward in a weight step go through PyTorch's
``DistributedDataParallel``, which averages the weight gradients while the
backward runs. Everything else is averaged explicitly by
:meth:`Replicas.average_`: the alphas live outside the wrapped module, and
second-order DARTS calls ``torch.autograd.grad`` directly, which DDP does not
see.

Single-process runs use :data:`SINGLE_PROCESS`, on which every method does
nothing, so the algorithms carry no branches for the distributed case.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from .config import DEVICES, ConfigError


@dataclass(frozen=True)
class Replicas:
    """This process' place among the data-parallel processes."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0  # the rank on this machine: which GPU it uses

    @property
    def is_main(self) -> bool:
        """Rank 0 writes the run folder and prints; the others stay quiet."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    def average_(self, tensors: Iterable[torch.Tensor | None]) -> None:
        """Replace each tensor in place by its mean over the ranks.

        The tensors are packed into one buffer per dtype and device, so a
        step costs one all-reduce instead of one per tensor. Every rank
        must pass tensors of the same shapes in the same order (None
        entries are skipped, identically on every rank when the ranks
        computed the same path).
        """
        if not self.active:
            return

        def mean_(flat: torch.Tensor) -> None:
            dist.all_reduce(flat)
            flat.div_(self.world_size)

        packed_(tensors, mean_)

    def average_grads_(self, params: Sequence[torch.Tensor]) -> None:
        """Average ``p.grad`` over the ranks for every parameter that has one."""
        self.average_([p.grad for p in params])

    def sum_(self, values: Sequence[float]) -> list[float]:
        """The element-wise sum of ``values`` over the ranks (float64)."""
        if not self.active:
            return list(values)
        t = torch.tensor(list(values), dtype=torch.float64, device=self._collective_device())
        dist.all_reduce(t)
        return t.tolist()

    def any(self, flag: bool) -> bool:
        """True on every rank when ``flag`` is true on at least one: ranks
        stop at the same step even when a signal reaches them at different times."""
        return self.sum_([1.0 if flag else 0.0])[0] > 0

    def broadcast_buffers_(self, module: nn.Module) -> None:
        """Give every rank rank 0's buffers (BatchNorm running statistics).

        DDP broadcasts them at each of its forwards; forwards outside it
        (architecture steps) update each rank's own copy, so before an
        evaluation or a checkpoint the ranks are made to agree.
        """
        if not self.active:
            return
        packed_(module.buffers(), lambda flat: dist.broadcast(flat, src=0))

    def gather(self, obj: object) -> list[object]:
        """``obj`` of every rank, in rank order (for per-rank RNG states)."""
        if not self.active:
            return [obj]
        out: list[object] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def _collective_device(self) -> torch.device:
        if dist.get_backend() == "nccl":
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")


def packed_(
    tensors: Iterable[torch.Tensor | None], collective: Callable[[torch.Tensor], None]
) -> None:
    """Run ``collective`` in place on the tensors packed into one flat buffer
    per dtype and device (None entries skipped), and copy the result back:
    one collective per dtype instead of one per tensor."""
    groups: dict[tuple[torch.dtype, torch.device], list[torch.Tensor]] = {}
    for t in tensors:
        if t is not None:
            groups.setdefault((t.dtype, t.device), []).append(t)
    for group in groups.values():
        flat = torch.cat([t.reshape(-1) for t in group])
        collective(flat)
        offset = 0
        for t in group:
            t.copy_(flat[offset : offset + t.numel()].view_as(t))
            offset += t.numel()


SINGLE_PROCESS = Replicas()


def resolve_device(preference: str, local_rank: int = 0) -> torch.device:
    """``auto``: this rank's GPU when CUDA is available, else the CPU."""
    if preference not in DEVICES:
        raise ConfigError(
            f"config key 'device': must be one of {list(DEVICES)}, got {preference!r}"
        )
    if preference == "cpu" or (preference == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ConfigError(
            "config key 'device': 'cuda' was asked for, but torch sees no CUDA device "
            "(use 'auto' or 'cpu')"
        )
    return torch.device("cuda", local_rank % torch.cuda.device_count())


def start(device_preference: str = "auto") -> tuple[Replicas, torch.device]:
    """This process' replicas and device, joining torchrun's process group
    when started by ``torchrun`` with more than one process.

    The backend follows the device: NCCL between GPUs, gloo on CPUs.
    torchrun's environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
    ``MASTER_ADDR``, ``MASTER_PORT``) says everything else.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return SINGLE_PROCESS, resolve_device(device_preference)
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_preference, local_rank)
    if not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Replicas(rank, world_size, local_rank), device


def finish(completed: bool = True) -> None:
    """Leave the process group (a no-op outside torchrun).

    After a completed run the ranks first wait for each other: rank 0 still
    writes its final files when the others are done, and tearing down the
    gloo group while a peer is busy can abort a process ("terminate called
    without an active exception"). After an error no barrier: the other
    ranks may never reach it.
    """
    if dist.is_available() and dist.is_initialized():
        if completed:
            dist.barrier()
        dist.destroy_process_group()


def wrap(
    module: nn.Module, replicas: Replicas, device: torch.device, find_unused: bool = False
) -> nn.Module:
    """``module`` in ``DistributedDataParallel`` when several ranks run, else itself.

    ``find_unused`` for supernets that run part of their weights per
    forward (GDAS' sampled op, SPOS' path): DDP then marks the weights a
    forward did not reach as ready instead of waiting for their gradients.
    """
    if not replicas.active:
        return module
    # Gradients as views into DDP's buffers: no copy per step, and no layout
    # mismatch for 1x1 convolutions, whose gradients may come channels-last.
    return nn.parallel.DistributedDataParallel(
        module,
        device_ids=[device.index] if device.type == "cuda" else None,
        find_unused_parameters=find_unused,
        gradient_as_bucket_view=True,
    )


def convert_sync_batchnorm(module: nn.Module, device: torch.device) -> None:
    """Replace ``module``'s BatchNorm layers in place by ``SyncBatchNorm``,
    which normalises with the statistics of the global batch.

    The new layers keep the same weight, bias and buffer tensors, so
    optimizers built before stay valid. PyTorch implements SyncBatchNorm
    for CUDA tensors only, hence GPUs (and NCCL).
    """
    if device.type != "cuda":
        raise ConfigError(
            "config key 'sync_bn': needs GPUs, since PyTorch's SyncBatchNorm runs on CUDA "
            "tensors only; run without it on CPUs"
        )
    for name, child in list(module.named_children()):
        converted = nn.SyncBatchNorm.convert_sync_batchnorm(child)  # type: ignore[no-untyped-call]  # torch leaves it unannotated
        if converted is not child:
            setattr(module, name, converted)


def shard(size: int, replicas: Replicas) -> range:
    """This rank's share of ``size`` evaluation samples: every world_size-th one."""
    return range(replicas.rank, size, replicas.world_size)
