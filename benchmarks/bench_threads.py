"""Which CPU thread setting trains fastest on *this* machine as it is now (docs/performance.md
"Threads"): torch's default, one thread per physical core, and ``OMP_WAIT_POLICY=PASSIVE``.

Each setting runs in a fresh child process (OpenMP reads its environment once, at start-up)
that times ``--steps`` MEA training steps (forward + backward + Adam) on a fixed random batch
shaped like a small custom store (``--preset small``'s model; batch 16; text 0, vision 0 and
audio 200 steps of 25 features, as Emo-DB through ``mea extract``). The settings are
interleaved ``--rounds`` times so that a change in the machine's load hits all of them alike.
Printed: the median wall and CPU (user + sys) seconds per step of each setting, with the load
average before and after. Run: ``.venv/bin/python benchmarks/bench_threads.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

SETTINGS: dict[str, dict[str, str]] = {
    "torch default": {},
    "1 thread": {"OMP_NUM_THREADS": "1"},
    "1 per physical core": {"OMP_NUM_THREADS": "{cores}"},
    "per core + OMP_WAIT_POLICY=PASSIVE": {"OMP_NUM_THREADS": "{cores}", "OMP_WAIT_POLICY": "PASSIVE"},
}


def physical_cores() -> int:
    """Physical cores (``psutil`` when it knows, else the logical CPUs)."""
    try:
        import psutil

        return psutil.cpu_count(logical=False) or os.cpu_count() or 1
    except ImportError:
        return os.cpu_count() or 1


def child(steps: int) -> None:
    """Time ``steps`` training steps here; print JSON (wall and CPU seconds per step)."""
    import torch

    from mea_cli.batch import Batch
    from mea_cli.models import config_for, create_model, get_entry

    dims = {"text": 50, "vision": 55, "audio": 25}
    cfg = config_for("mea", "iemocap", dims, "multiclass", 7, **get_entry("mea").small)
    torch.manual_seed(0)
    model = create_model("mea", cfg).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    b = 16
    lengths = {"text": 0, "vision": 0, "audio": 200}
    batch = Batch(
        inputs={m: torch.randn(b, max(n, 1), dims[m]) for m, n in lengths.items()},
        masks={m: torch.full((b, max(n, 1)), n > 0) for m, n in lengths.items()},
        labels=torch.nn.functional.one_hot(torch.arange(b) % 7, 7).float(),
        ids=[str(i) for i in range(b)],
    )

    def step() -> None:
        out = model(batch)
        opt.zero_grad()
        out.loss.backward()
        opt.step()

    step()  # warm-up
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(steps):
        step()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(json.dumps({"threads": torch.get_num_threads(), "wall": wall / steps, "cpu": cpu / steps}))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds per child at most")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.steps)
        return 0
    cores = physical_cores()
    load0 = os.getloadavg()
    results: dict[str, list[dict]] = {k: [] for k in SETTINGS}
    for _ in range(args.rounds):
        for name, env in SETTINGS.items():
            e = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")}
            e.update({k: v.format(cores=cores) for k, v in env.items()})
            try:
                out = subprocess.run(
                    [sys.executable, __file__, "--child", "--steps", str(args.steps)],
                    env=e, capture_output=True, text=True, check=True, timeout=args.timeout,
                )  # fmt: skip
            except subprocess.TimeoutExpired:  # a collapse: counted as the limit, and said so
                results[name].append({"threads": "?", "wall": float("inf"), "cpu": float("nan")})
                continue
            results[name].append(json.loads(out.stdout.strip().splitlines()[-1]))
    load1 = os.getloadavg()
    print(f"{os.cpu_count()} logical CPUs, {cores} physical cores; load average (1/5/15 min) "
          f"before {load0[0]:.2f}/{load0[1]:.2f}/{load0[2]:.2f}, after {load1[0]:.2f}/"
          f"{load1[1]:.2f}/{load1[2]:.2f}")  # fmt: skip
    print("| setting | torch threads | wall s/step (median) | CPU s/step (median) | walls |")
    print("|---|---|---|---|---|")
    for name, rows in results.items():
        walls = sorted(r["wall"] for r in rows)
        cpus = sorted((r["cpu"] for r in rows), key=lambda c: (c != c, c))  # NaN (timed out) last
        print(
            f"| {name} | {rows[0]['threads']} | {walls[len(walls) // 2]:.3f} | "
            f"{cpus[len(cpus) // 2]:.3f} | "
            f"{', '.join(f'{w:.2f}' if w < float('inf') else f'> {args.timeout:.0f} s run' for w in walls)} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
