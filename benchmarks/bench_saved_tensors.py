"""Census of one training step: the tensors autograd keeps for backward, per module, and the aten
operator calls of the step's forward + backward.

Deterministic where peak RSS is not: the bytes kept for the backward pass of a batch are the
bulk of a training step's working set above the process base (``docs/performance.md``, "Memory:
where it goes"), and operator counts do not move with the machine's load. The trainer's data
stage and model as :mod:`bench_train_epoch` builds them (epoch 1's batches, seed 1111); the
census runs on the largest batch (most padded steps), after one warm-up step::

    python benchmarks/bench_saved_tensors.py STORE [--batch 32] [--depth 3] [--ops] [--set k=v]

Saved tensors are counted once per storage (``torch.autograd.graph.saved_tensors_hooks``: a view
saved by two nodes, or a tensor saved by the layer that made it and the one that reads it, is one
storage), parameters left out, each storage charged to the innermost module running when it was
first saved (its name cut to ``--depth`` components, digits kept). Bytes are the storage's.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.append(
    str(Path(__file__).resolve().parent)
)  # sibling bench_* modules, after site-packages

from bench_train_epoch import add_epoch_args, epoch_batches  # noqa: E402


def census(model: Any, batch: Any, depth: int) -> dict[str, Any]:
    """Run ``model(batch).loss.backward()`` and return the saved-tensor bytes per module prefix."""
    import torch

    stack: list[str] = ["(model)"]
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: dict[int, tuple[str, int]] = {}

    def pre(name: str):
        def hook(module: Any, args: Any) -> None:
            stack.append(name)

        return hook

    def post(module: Any, args: Any, out: Any) -> None:
        stack.pop()

    handles = []
    for name, module in model.named_modules():
        if name:
            handles.append(module.register_forward_pre_hook(pre(name)))
            handles.append(module.register_forward_hook(post))

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        ptr = storage.data_ptr()
        if ptr not in params and ptr not in seen and storage.nbytes() > 0:
            seen[ptr] = (".".join(stack[-1].split(".")[:depth]), storage.nbytes())
        return t

    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            out = model(batch)
        out.loss.backward()
    finally:
        for h in handles:
            h.remove()
    per: Counter[str] = Counter()
    count: Counter[str] = Counter()
    for name, nbytes in seen.values():
        per[name] += nbytes
        count[name] += 1
    mib = 1 << 20
    return {
        "total_MiB": round(sum(per.values()) / mib, 1),
        "storages": len(seen),
        "per_module_MiB": {k: round(v / mib, 2) for k, v in sorted(per.items())},
        "per_module_storages": dict(sorted(count.items())),
        "loss": round(float(out.loss.detach()), 6),
    }


def op_counts(model: Any, batch: Any) -> dict[str, Any]:
    """aten operator calls of one forward + backward (``torch.profiler``), total and top 15."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        model(batch).loss.backward()
    calls = Counter({e.key: e.count for e in prof.key_averages() if e.key.startswith("aten::")})
    return {"aten_calls": sum(calls.values()), "top": dict(calls.most_common(15))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_epoch_args(ap)
    ap.add_argument("--depth", type=int, default=3, help="module name components kept")
    ap.add_argument("--ops", action="store_true", help="also count aten operator calls")
    a = ap.parse_args()

    import torch

    torch.set_num_threads(1)
    model, batches = epoch_batches(a)
    biggest = max(batches, key=lambda b: sum(int(m.sum()) for m in b.masks.values()))
    model(batches[0]).loss.backward()  # warm-up, as bench_train_epoch
    model.zero_grad(set_to_none=True)
    torch.manual_seed(a.seed)
    result: dict[str, Any] = {"batch_size": len(biggest), "census": census(model, biggest, a.depth)}
    if a.ops:
        model.zero_grad(set_to_none=True)
        torch.manual_seed(a.seed)
        result["ops"] = op_counts(model, biggest)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
