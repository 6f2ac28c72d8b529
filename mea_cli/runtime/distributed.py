"""Data-parallel training across processes: ``torchrun --nproc-per-node N -m mea_cli train ...``.

torchrun sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and the rendezvous address; when
``WORLD_SIZE > 1`` we join the process group with NCCL on CUDA and Gloo on CPU. Each rank
trains on a disjoint share of every epoch (:class:`mea_cli.data.sampler.BucketBatchSampler`
with ``num_replicas`` / ``rank``), gradients are averaged by DistributedDataParallel, and
validation / test predictions are gathered from all ranks (duplicates from the sampler's
padding removed by sample id) so that every rank computes the same metrics and takes the same
early-stopping decision. Only rank 0 writes files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the job (a single process is rank 0 of 1).

    ``enabled`` (more than one process) and ``is_main`` (rank 0, the one that writes files) are
    worked out once, when the place is known, and carried as plain values: the run asks them
    at every file it writes."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str = ""
    enabled: bool = field(init=False)
    is_main: bool = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "enabled", self.world_size > 1)
        object.__setattr__(self, "is_main", self.rank == 0)


def init_distributed(device_type: str) -> DistInfo:
    """Join the torchrun process group when launched by torchrun with ``WORLD_SIZE > 1``."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    rank = int(os.environ["RANK"])
    local = int(os.environ.get("LOCAL_RANK", "0"))
    backend = "nccl" if device_type == "cuda" else "gloo"
    if not dist.is_initialized():
        if device_type == "cuda":
            torch.cuda.set_device(local)
        dist.init_process_group(backend=backend)
    return DistInfo(rank, world, local, backend)


def shutdown(info: DistInfo) -> None:
    """Leave the process group (when this run started one)."""
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()


def broadcast_object(info: DistInfo, obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank (e.g. the run name, which holds a timestamp)."""
    if not info.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_gather_objects(info: DistInfo, obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order, on every rank."""
    if not info.enabled:
        return [obj]
    out: list[Any] = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def barrier(info: DistInfo) -> None:
    """Wait until every rank is here (a no-op in one process)."""
    if info.enabled:
        dist.barrier()
