"""Seconds and peak memory of one training step of a registered model, one process per point.

A *point* is (model, dataset preset, batch size, sequence length ``T``, path, config
overrides). Its child process builds the model with the preset (the MMSA MOSI feature sizes:
text 768, audio 5, vision 20; MOSEI: text 768, audio 74, vision 35), makes one random batch in
which every sample has ``T`` vision and audio steps and ``min(T, 50)`` text steps (no padding:
the curves show the cost of length itself; ``--ragged`` draws each sample's lengths uniformly
between a tenth of that and that, as in the benchmark pickle, so padding and its removal
count), and times ``--steps`` training steps (forward,
backward, Adam) after one warm-up step, in wall and in process CPU seconds (with one thread,
CPU seconds are what a quiet machine's wall clock would show; they hold up under load). ``path=explicit`` runs the reference code
(:func:`mea_cli.models.layers.attention.explicit_attention`), the baseline of every optimisation.
The child's peak RSS (and ``torch.cuda.max_memory_allocated`` on a GPU) is the point's memory.

    python benchmarks/bench_step_cost.py --model mea --T 500 --batch 4 [--path explicit] [--set k=v]

``--budget-gib G`` checks the point against a memory budget (peak RSS on CPU,
``torch.cuda.max_memory_allocated`` on a GPU): one line saying whether it fits, exit status 1
when it does not. ``make bench-mosei-memory`` is the MOSEI preset's check (issue 15): batch 64,
10 heads, every sample 500 vision and audio steps (the worst case), against 24 GiB.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.append(str(Path(__file__).resolve().parent))  # sibling bench_* modules, after site-packages

import bench_machine

HERE = Path(__file__).resolve().parent
DIMS = {
    "mosi": {"text": 768, "audio": 5, "vision": 20},
    "mosei": {"text": 768, "audio": 74, "vision": 35},
    "iemocap": {"text": 768, "audio": 74, "vision": 35},
}
TEXT_MAX = 50


def _batch(dataset: str, batch: int, t: int, ragged: bool, num_labels: int, device: Any) -> Any:
    import torch

    from mea_cli.batch import Batch

    g = torch.Generator().manual_seed(0)
    inputs, masks = {}, {}
    for m, dim in DIMS[dataset].items():
        steps = min(t, TEXT_MAX) if m == "text" else t
        lengths = torch.full((batch,), steps)
        if ragged:  # uniform in [steps / 10, steps] as in the benchmark pickle; one full
            lengths = torch.randint(max(1, steps // 10), steps + 1, (batch,), generator=g)
            lengths[0] = steps
        masks[m] = torch.arange(steps)[None, :] < lengths[:, None]
        inputs[m] = torch.randn(batch, steps, dim, generator=g) * masks[m][..., None]
    if dataset == "iemocap":
        labels = torch.randint(0, 2, (batch, num_labels), generator=g).float()
    else:
        labels = torch.randn(batch, 1, generator=g)
    return Batch(inputs, masks, labels, [str(i) for i in range(batch)]).to(device)


def child(a: argparse.Namespace) -> dict[str, Any]:
    """Measure one point in this process (see the module docstring)."""
    from mea_cli.runtime import prefer_huge_pages

    prefer_huge_pages()  # as the `mea` entry point does, before torch is imported
    import torch

    from mea_cli.models import config_for, create_model
    from mea_cli.models.layers.attention import explicit_attention

    if a.threads:
        torch.set_num_threads(a.threads)
    device = torch.device("cuda" if a.device == "cuda" else "cpu")
    sets = dict(s.split("=", 1) for s in a.sets)
    cfg = config_for(a.model, a.dataset, input_dims=DIMS[a.dataset], **sets)
    torch.manual_seed(0)
    model = create_model(a.model, cfg).to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    num_labels = getattr(cfg, "num_labels", 1)
    batch = _batch(a.dataset, a.batch, a.T, a.ragged, num_labels, device)
    path = explicit_attention() if a.path == "explicit" else contextlib.nullcontext()

    # the trainer's precision: bf16 autocast on a GPU, fp32 on CPU (mea_cli.runtime.engine)
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16)
        if device.type == "cuda"
        else contextlib.nullcontext()
    )

    def step() -> tuple[float, float]:
        start, cpu = time.perf_counter(), time.process_time()
        opt.zero_grad(set_to_none=True)
        with autocast:
            out = model(batch)
        out.loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start, time.process_time() - cpu

    with path:
        warm, _ = step()
        # a point whose warm-up step is long is timed once (keeps `make bench` short)
        timed = [step() for _ in range(a.steps if warm < 5.0 else 1)]
    times = [w for w, _ in timed]
    return {
        "model": a.model,
        "dataset": a.dataset,
        "batch": a.batch,
        "T": a.T,
        "ragged": a.ragged,
        "path": a.path,
        "sets": a.sets,
        "params": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "warmup_s": round(warm, 3),
        "step_s": round(statistics.median(times), 3),
        "step_s_all": [round(x, 3) for x in times],
        "step_cpu_s": round(statistics.median(c for _, c in timed), 3),
        "samples_per_s": round(a.batch / statistics.median(times), 3),
        "peak_rss_MiB": bench_machine.peak_rss_mib(),
        "cuda_max_memory_allocated_MiB": (
            round(torch.cuda.max_memory_allocated() / 2**20, 1) if device.type == "cuda" else None
        ),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "precision": "bf16 autocast" if device.type == "cuda" else "fp32",
        "torch_threads": torch.get_num_threads(),
        "load_average": bench_machine.load_average(),
    }


def measure(
    point: dict[str, Any],
    work: Path,
    steps: int = 2,
    threads: int = 0,
    device: str = "cpu",
) -> dict[str, Any]:
    """One point (keys of :func:`point`) in a child process; its figures, or ``{"error": ...}``
    with the child's log tail when it failed (e.g. out of memory)."""
    name = "-".join(str(point[k]) for k in ("model", "dataset", "batch", "T", "path"))
    name += "-ragged" if point["ragged"] else ""
    if point["sets"]:  # a digest: a dozen --set values overflow a file name
        name += "-" + hashlib.sha1("\n".join(point["sets"]).encode()).hexdigest()[:10]
    log, out = work / f"{name}.log", work / f"{name}.json"
    log.unlink(missing_ok=True)
    out.unlink(missing_ok=True)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--json", str(out)]
    cmd += ["--model", point["model"], "--dataset", point["dataset"], "--path", point["path"]]
    cmd += ["--batch", str(point["batch"]), "--T", str(point["T"]), "--steps", str(steps)]
    cmd += ["--threads", str(threads), "--device", device]
    cmd += ["--ragged"] if point["ragged"] else []
    for s in point["sets"]:
        cmd += ["--set", s]
    code, peak = bench_machine.run_child(cmd, log)
    if code != 0 or not out.exists():
        tail = log.read_text(errors="replace").strip().splitlines()[-1:] if log.exists() else []
        return {**point, "error": f"exit {code}: {' '.join(tail)[:200]}", "peak_rss_MiB": peak}
    rec = json.loads(out.read_text())
    rec["peak_rss_MiB"] = max(rec["peak_rss_MiB"], peak)
    return rec


def point(
    model: str,
    batch: int,
    t: int,
    path: str = "efficient",
    dataset: str = "mosi",
    sets: tuple[str, ...] = (),
    ragged: bool = False,
) -> dict[str, Any]:
    """A point's description (what :func:`measure` takes)."""
    return {"model": model, "dataset": dataset, "batch": batch, "T": t, "path": path,
            "sets": list(sets), "ragged": ragged}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="mea")
    ap.add_argument("--dataset", default="mosi", choices=sorted(DIMS))
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--T", type=int, default=500)
    ap.add_argument("--path", default="efficient", choices=("efficient", "explicit"))
    ap.add_argument("--ragged", action="store_true", help="lengths uniform in [T/10, T]")
    ap.add_argument("--set", dest="sets", action="append", default=[])
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    ap.add_argument("--json", type=Path, help="write the point here (else print it)")
    ap.add_argument("--budget-gib", type=float, help="check the peak memory against this budget")
    a = ap.parse_args()
    rec = child(a)
    verdict = budget_check(rec, a.budget_gib) if a.budget_gib else None
    if a.json:
        from mea_cli.paths import write_json

        write_json(a.json, rec)
    else:
        print(json.dumps(rec, indent=1))
    if verdict is not None:
        print(verdict)
        sys.exit(0 if rec["fits_budget"] else 1)


def budget_check(rec: dict[str, Any], budget_gib: float) -> str:
    """Add ``budget_MiB`` and ``fits_budget`` to ``rec``; the one-line verdict."""
    on_gpu = rec["cuda_max_memory_allocated_MiB"] is not None
    used = rec["cuda_max_memory_allocated_MiB"] if on_gpu else rec["peak_rss_MiB"]
    what = f"torch.cuda.max_memory_allocated on {rec['device']}" if on_gpu else "peak RSS (CPU)"
    rec["budget_MiB"] = round(budget_gib * 1024, 1)
    rec["fits_budget"] = used <= rec["budget_MiB"]
    return (
        f"{rec['model']} {rec['dataset']} preset, batch {rec['batch']}, T {rec['T']}: {what} "
        f"{used / 1024:.2f} GiB, {'within' if rec['fits_budget'] else 'OVER'} the "
        f"{budget_gib:g} GiB budget ({rec['step_s']} s/step, {rec['torch_threads']} threads, "
        f"load {rec['load_average'][0]})"
    )


if __name__ == "__main__":
    main()
