"""``--device``: auto, cpu, cuda and cuda:N, each refused clearly when torch cannot honour it."""

from __future__ import annotations

import pytest
import torch

from mea_cli.runtime.distributed import DistInfo
from mea_cli.runtime.engine import DeviceError, resolve_device


def test_cpu_and_auto_without_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(" AUTO ") == torch.device("cpu")
    for asked in ("cuda", "cuda:0", "cuda:3"):
        with pytest.raises(DeviceError, match=f"--device {asked} was requested but torch sees no CUDA GPU"):
            resolve_device(asked)


@pytest.mark.parametrize("bad", ["gpu", "cuda:", "cuda:x", "cuda:-1", "cpu:0", "cuda:1:2", "mps"])
def test_malformed_devices(bad: str) -> None:
    with pytest.raises(DeviceError, match="--device"):
        resolve_device(bad)


def test_cuda_index_with_two_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a two-GPU machine answers, checked without one: torch.device needs no GPU."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("cuda") == torch.device("cuda", 0)
    assert resolve_device("auto") == torch.device("cuda", 0)
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(DeviceError, match=r"cuda:2: torch sees 2 CUDA GPUs \(cuda:0 to cuda:1\)"):
        resolve_device("cuda:2")
    ranked = DistInfo(rank=1, local_rank=1, world_size=2, backend="nccl")
    assert resolve_device("cuda", ranked) == torch.device("cuda", 1)  # torchrun: LOCAL_RANK
    with pytest.raises(DeviceError, match="under torchrun each process takes cuda:<LOCAL_RANK>"):
        resolve_device("cuda:0", ranked)
