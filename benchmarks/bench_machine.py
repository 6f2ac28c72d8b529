"""What every benchmark records beside its figures: the machine, the load, and peak memory.

Stdlib only (the incumbent's runner imports it from MMSA's own virtualenv too). Peak memory is
the process's peak resident set size (``VmHWM`` in ``/proc/self/status`` on Linux, else
``ru_maxrss``); a child process is used for every memory figure, so that one measurement's
peak cannot hide another's.
"""

from __future__ import annotations

import os
import platform
import resource
import sys
import time
from collections.abc import Callable
from typing import Any


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages (another job on the machine skews every timing)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def speed_probe(repeats: int = 3) -> float:
    """Seconds (best of ``repeats``) of one fixed one-thread torch workload: 2000 rounds of a
    ``[64, 256] x [256, 256]`` product, a LayerNorm and a softmax, the kinds of operator a
    training step is made of. Taken before and after each model's run, so that a report shows
    whether the machine itself changed speed between the incumbent's run and ours: on the shared
    virtual machine of docs/performance.md the same epoch took 32 s at one hour and 64 s two
    hours later, at the same load average inside the machine. torch is imported here, not at
    the top (this module stays importable without it)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        g = torch.Generator().manual_seed(0)
        w, x = torch.randn(256, 256, generator=g), torch.randn(64, 256, generator=g)
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            for _ in range(2000):
                torch.softmax(torch.layer_norm(x @ w, (256,)), dim=-1)
            best = min(best, time.perf_counter() - start)
        return round(best, 4)
    finally:
        torch.set_num_threads(threads)


def speed_drift(probes: list[float]) -> float:
    """How far apart the :func:`speed_probe` seconds of one benchmark are: slowest over fastest
    minus one (0.25: the machine was 25 % slower at one point than at another)."""
    return round(max(probes) / min(probes) - 1.0, 3) if probes and min(probes) > 0 else 0.0


def probe_line(probes: dict[str, float]) -> str:
    """The report's line of the named :func:`speed_probe` seconds and their :func:`speed_drift`
    (``bench_peers.py`` and ``bench_extract.py`` print the same line)."""
    shown = ", ".join(f"{k} {v:.3f}" for k, v in probes.items())
    return f"machine speed probe (s, one thread, best of 3): {shown}; drift {speed_drift(list(probes.values())):.0%}"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cpu_flags() -> list[str]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    have = set(line.split(":", 1)[1].split())
                    wanted = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
                    return [x for x in wanted if x in have]
    except OSError:
        pass
    return []


def _memory_total_gib() -> float | None:
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def describe(torch_module: Any | None = None) -> dict[str, Any]:
    """CPU model, cores, memory, OS, Python, and (given ``torch``) its version, threads, GPU."""
    info: dict[str, Any] = {
        "cpu": _cpu_model(),
        "cpu_flags": _cpu_flags(),
        "cores": os.cpu_count(),
        "memory_GiB": _memory_total_gib(),
        "os": f"{platform.system()} {platform.release()}",
        "python": sys.version.split()[0],
        "load_average": load_average(),
    }
    if torch_module is not None:
        torch = torch_module
        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
        info["cuda"] = bool(torch.cuda.is_available())
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    return info


def _proc_kib(field: str, pid: int | str = "self", path: str = "status") -> int | None:
    """A ``kB`` field of ``/proc/<pid>/<path>`` (``status``, ``smaps_rollup``); None where it
    cannot be read (no ``/proc``, a process that has ended)."""
    try:
        with open(f"/proc/{pid}/{path}", encoding="utf-8") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def peak_rss_mib() -> float:
    """This process's peak resident set size so far, MiB."""
    kib = _proc_kib("VmHWM")
    if kib is None:  # ru_maxrss is KiB on Linux, bytes on macOS
        kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        if sys.platform == "darwin":
            kib //= 1024
    return round(kib / 1024, 1)


def rss_mib() -> float | None:
    """This process's current resident set size, MiB (None where /proc is missing)."""
    kib = _proc_kib("VmRSS")
    return None if kib is None else round(kib / 1024, 1)


def reset_peak_rss() -> bool:
    """Reset ``VmHWM`` to the current RSS (Linux >= 4.0); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="utf-8") as f:
            f.write("5")
        return True
    except OSError:
        return False


def tree_pids(root: int) -> list[int]:
    """``root`` and every descendant process alive now (Linux ``/proc``; ``[root]`` elsewhere)."""
    out = [root]
    try:
        with open(f"/proc/{root}/task/{root}/children", encoding="utf-8") as f:
            kids = [int(k) for k in f.read().split()]
    except OSError:
        return out
    for k in kids:
        out += tree_pids(k)
    return out


def tree_cpu_s(root: int | None = None) -> float:
    """User + system CPU seconds of ``root`` (default: this process) and its live descendants,
    every thread: the CPU of a run that starts processes of its own (``mea train --procs``)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in tree_pids(os.getpid() if root is None else root):
        try:
            with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / tick


class TreeMemory:
    """The peak of a process tree's memory while it runs, sampled every ``every_s``: the summed
    RSS of its processes, and their summed PSS (each shared page split among the processes that
    map it, so a library two ranks load counts once), read near the summed RSS's peak (within
    2 %, at most twice a second: reading PSS walks the page tables)."""

    def __init__(self, root: int, every_s: float = 0.02) -> None:
        self.root = root
        self.every_s = every_s
        self.peak_rss_kib = 0
        self.peak_pss_kib = 0
        self.processes = 1
        self._pss_at = 0.0

    def sample(self) -> None:
        pids = tree_pids(self.root)
        self.processes = max(self.processes, len(pids))
        rss = sum(_proc_kib("VmRSS", p) or 0 for p in pids)
        self.peak_rss_kib = max(self.peak_rss_kib, rss)
        now = time.monotonic()
        if rss >= 0.98 * self.peak_rss_kib and now - self._pss_at >= 0.5:
            self._pss_at = now
            pss = sum(_proc_kib("Pss", p, "smaps_rollup") or 0 for p in pids)
            self.peak_pss_kib = max(self.peak_pss_kib, pss)

    def to_dict(self) -> dict[str, Any]:
        return {
            "peak_rss_sum_MiB": round(self.peak_rss_kib / 1024, 1),
            "peak_pss_sum_MiB": round(self.peak_pss_kib / 1024, 1),
            "processes": self.processes,
        }


def run_child(
    cmd: list[str],
    log: str | os.PathLike[str],
    env: dict[str, str] | None = None,
    tree: dict[str, Any] | None = None,
) -> tuple[int, float]:
    """Run ``cmd`` with stdout and stderr appended to ``log``; return ``(exit code, peak RSS MiB)``.

    The peak RSS comes from the kernel's accounting of that one child (``wait4``), so it covers
    the child's whole life whatever the child reports itself; for a child that starts processes
    of its own it is the largest one's. Given a dict ``tree``, the child's process tree is
    sampled while it runs (:class:`TreeMemory`) and ``tree`` receives its summed peaks.
    """
    import subprocess

    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        if tree is None:
            _, status, usage = os.wait4(proc.pid, 0)
        else:
            memory = TreeMemory(proc.pid)
            while True:
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    break
                memory.sample()
                time.sleep(memory.every_s)
            tree.update(memory.to_dict())
    proc.returncode = os.waitstatus_to_exitcode(status)
    kib = usage.ru_maxrss // (1024 if sys.platform == "darwin" else 1)
    return proc.returncode, round(kib / 1024, 1)


class TimedPasses:
    """A transparent wrapper of a trainer's training loader that records each full pass over it:
    wall and process CPU seconds, samples (``count(batch)`` each), load average and RSS after.
    Used for our trainer (``bench_train_child``) and MMSA's (``bench_mmsa_runner``) alike."""

    def __init__(
        self,
        loader: Any,
        passes: list[dict[str, Any]],
        count: Callable[[Any], int],
        cpu: Callable[[], float] = time.process_time,
    ) -> None:
        self._loader = loader
        self._passes = passes
        self._count = count
        self._cpu = cpu  # tree_cpu_s for a run of several processes

    def __getattr__(self, name: str) -> Any:  # batch_sampler, dataset, ... of the real loader
        return getattr(self._loader, name)

    def __len__(self) -> int:
        return len(self._loader)

    def __iter__(self) -> Any:
        start, cpu = time.perf_counter(), self._cpu()
        samples = 0
        for batch in self._loader:
            samples += self._count(batch)
            yield batch
        self._passes.append(
            {
                "train_s": round(time.perf_counter() - start, 3),
                "train_cpu_s": round(self._cpu() - cpu, 3),
                "samples": samples,
                "load_average": load_average(),
                "rss_MiB": rss_mib(),
            }
        )
