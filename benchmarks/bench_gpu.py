"""``make bench-gpu``: everything a lent GPU should be used for, in one call, one JSON (issue 27).

1. The CUDA test subset: ``pytest -m cuda`` (tests that skip without a GPU: device placement,
   bf16 autocast against fp32, a training step on the card), counted from its JUnit XML.
2. One training step (forward, backward, Adam; after a warm-up step) of MEA and of MulT at the
   MOSI and MOSEI presets -- each preset's batch size, every sample ``--T`` vision and audio
   steps -- each in a process of its own (:mod:`bench_step_cost`): seconds per step and
   ``torch.cuda.max_memory_allocated`` (the trainer's precision: bf16 autocast on a GPU).
3. One JSON in ``benchmarks/results/gpu-<time>.json``: the card, the tests, the steps, the
   peak ``torch.cuda.max_memory_allocated`` over all of them, and the machine.

    .venv/bin/python benchmarks/bench_gpu.py [--device cuda] [--T 500] [--batch N] [--json F]

``--device cpu`` runs the same logic on the CPU (the CUDA tests then skip, the memory is the
peak RSS, every figure is a CPU timing): how the script itself is tested. Nothing here has
run on a GPU yet (docs/performance.md says so); the first lent GPU should run ``make bench-gpu``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

sys.path.append(str(Path(__file__).resolve().parent))  # sibling bench_* modules, after site-packages

import bench_machine
import bench_step_cost

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MODELS = ("mea", "mult")
DATASETS = ("mosi", "mosei")


def cuda_tests(work: Path, extra: list[str]) -> dict[str, Any]:
    """``pytest -m cuda`` in a child process; its counts (from the JUnit XML) and exit code."""
    xml = work / "cuda-tests.xml"
    xml.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "pytest", "-m", "cuda", "-q", "-n", "0", "-p", "no:cacheprovider",
           f"--junitxml={xml}", *extra]  # fmt: skip
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    out: dict[str, Any] = {"command": " ".join(cmd[1:]), "exit_code": done.returncode}
    if xml.exists():
        out.update(junit_counts(xml.read_text()))
    else:
        out["error"] = (done.stdout + done.stderr).strip().splitlines()[-3:]
    return out


def junit_counts(text: str) -> dict[str, int]:
    """``tests``, ``failures``, ``errors``, ``skipped`` and ``passed`` of a JUnit XML report."""
    root = ET.fromstring(text)
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    counts = {k: sum(int(s.get(k, 0)) for s in suites) for k in ("tests", "failures", "errors", "skipped")}
    counts["passed"] = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    return counts


def preset_batch(model: str, dataset: str) -> int:
    from mea_cli.train.presets import training_preset

    return int(training_preset(model, dataset).settings.batch_size)


def peak_memory_mib(steps: list[dict[str, Any]], device: str) -> float | None:
    """The largest ``torch.cuda.max_memory_allocated`` of the steps (GPU) or peak RSS (CPU)."""
    key = "cuda_max_memory_allocated_MiB" if device == "cuda" else "peak_rss_MiB"
    values = [s[key] for s in steps if s.get(key) is not None and "error" not in s]
    return max(values) if values else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    ap.add_argument("--T", type=int, default=500, help="vision and audio steps of every sample")
    ap.add_argument("--batch", type=int, default=0, help="override the presets' batch sizes")
    ap.add_argument("--steps", type=int, default=2, help="timed steps after the warm-up step")
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--datasets", default=",".join(DATASETS))
    ap.add_argument("--skip-tests", action="store_true")
    ap.add_argument("--pytest-arg", action="append", default=[], help="passed on to pytest")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    import torch

    if a.device == "cuda" and not torch.cuda.is_available():
        print("no CUDA GPU visible to torch: run with --device cpu to check the script", file=sys.stderr)
        return 2
    from mea_cli.paths import ensure_dir, write_json

    work = ensure_dir(ensure_dir(HERE / ".work") / "gpu")
    card = torch.cuda.get_device_name(0) if a.device == "cuda" else "cpu (no GPU: CPU timings)"
    print(f"device: {card}; load average {bench_machine.load_average()}", flush=True)
    report: dict[str, Any] = {"benchmark": "bench-gpu (issue 27)", "device": a.device, "card": card}
    if not a.skip_tests:
        report["cuda_tests"] = cuda_tests(work, a.pytest_arg)
        print(f"CUDA tests: {report['cuda_tests']}", flush=True)
    steps = []
    for model in a.models.split(","):
        for dataset in a.datasets.split(","):
            batch = a.batch or preset_batch(model, dataset)
            p = bench_step_cost.point(model, batch, a.T, dataset=dataset)
            rec = bench_step_cost.measure(p, work, steps=a.steps, device=a.device)
            steps.append(rec)
            mem = rec.get("cuda_max_memory_allocated_MiB") or rec.get("peak_rss_MiB")
            print(f"  {model:5s} {dataset:6s} batch {batch:3d} T {a.T}: "
                  + (rec["error"] if "error" in rec else f"{rec['step_s']} s/step, {mem} MiB"),
                  flush=True)  # fmt: skip
    report["steps"] = steps
    report["peak_memory_MiB"] = peak_memory_mib(steps, a.device)
    report["peak_memory_is"] = (
        "torch.cuda.max_memory_allocated" if a.device == "cuda" else "peak RSS of a step's process"
    )
    report["machine"] = bench_machine.describe(torch)
    path = a.json or ensure_dir(HERE / "results") / f"gpu-{time.strftime('%Y%m%d-%H%M%S')}.json"
    write_json(path, report)
    print(f"peak memory {report['peak_memory_MiB']} MiB ({report['peak_memory_is']}); wrote {path}")
    failed = report.get("cuda_tests", {}).get("exit_code", 0) not in (0, 5)  # 5: none collected
    return 1 if failed or any("error" in s for s in steps) else 0


if __name__ == "__main__":
    sys.exit(main())
