"""Real-time factor of ``mea extract`` (seconds of video per second of compute or wall time).

Makes talking-face clips offline (scikit-image's astronaut photo + espeak-ng speech, see
``tests/sampleclips.py``; 25 fps, 256x256 unless ``--size``), then measures

1. each modality alone in this process: vision (decode + MediaPipe blendshapes), audio
   (decode + openSMILE eGeMAPS LLDs and Functionals in one run, as the pipeline makes them for a
   whole-video sample), text from a transcript sidecar (GloVe), text from ASR
   (faster-whisper tiny.en, when installed);
2. the whole default pipeline with transcript sidecars, 1 and 2 workers (``--workers``), wall
   clock from the call to the packed store (process start-up and model loading included; the
   start-up -- call to first video begun -- also alone, and the real-time factor after it);
3. the whole pipeline with text from ASR (no sidecars), with ``--workers-asr`` workers.

Run: ``.venv/bin/python benchmarks/bench_extract.py --videos 4 --seconds 60`` (``make
bench-extract``); short clips, where start-up dominates: ``--videos 40 --seconds 3
--skip-asr --skip-modalities`` (``make bench-extract-short``). The figures are
CPU timings on whatever machine runs it; they say nothing about a GPU. A fixed one-thread
workload is timed at the start and at the end (``bench_machine.speed_probe``, as ``make
bench-peers`` does): two runs compare only when their probes agree.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.append(str(Path(__file__).resolve().parents[1] / "tests"))  # sampleclips (test code)
sys.path.append(str(Path(__file__).resolve().parent))  # sibling bench_* modules, after site-packages

import bench_machine  # noqa: E402

# Several different sentences: one sentence looped for a minute is not speech as Whisper
# knows it; its transcript compresses so well (gzip ratio ~3.9 > 2.4) that faster-whisper's
# hallucination guard re-decodes every 30 s window at temperatures 0.2 ... 1.0 with 5 samples
# each, which made ASR ~6x slower than on ordinary speech and measured that fallback instead.
SENTENCES = (
    "the quick brown fox jumps over the lazy dog and everybody smiles at the camera",
    "yesterday we walked along the river until the rain started to fall",
    "i honestly think this movie was far better than the reviews suggested",
    "please remember to bring your notes to the meeting on thursday morning",
    "the kitchen smelled of fresh bread and coffee when she opened the door",
    "nobody expected the small team to win the final match of the season",
    "my grandmother grew tomatoes and beans in a garden behind her house",
    "the train was late again so i read a book about ancient rome",
)


def make_corpus(root: Path, n: int, seconds: float, size: int) -> float:
    from sampleclips import astronaut, speak, write_clip

    from mea_cli.extract.media import AUDIO_RATE

    pause = np.zeros(int(0.8 * AUDIO_RATE), np.float32)
    voices = [np.concatenate([speak(s), pause]) for s in SENTENCES]
    total = int(seconds * AUDIO_RATE)
    img = astronaut(size)
    for k in range(n):
        parts, said, length, j = [], [], 0, k
        while length < total:
            v = voices[j % len(voices)]
            parts.append(v)
            said.append(SENTENCES[j % len(SENTENCES)])
            length += len(v)
            j += 1
        audio = np.concatenate(parts)[:total]
        path = root / f"clip{k:02d}.mp4"
        write_clip(path, img, seconds, audio=audio)
        (root / f"clip{k:02d}.txt").write_text(" ".join(said) + "\n")
    return n * seconds


def _cpu_tree() -> float:
    """CPU seconds of this process and its finished children (the workers)."""
    import resource

    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _load() -> float:
    return os.getloadavg()[0]


def per_modality(video: Path, seconds: float) -> dict[str, float]:
    from mea_cli.extract.asr import AsrUnavailable, WhisperASR
    from mea_cli.extract.audio import OpenSmileBackend
    from mea_cli.extract.face import BlendshapeBackend
    from mea_cli.extract.glove import GloveBackend
    from mea_cli.extract.media import decode_audio, iter_frames
    from mea_cli.extract.text import read_sidecar
    from mea_cli.extract.vad import SileroVAD

    face, audio, text, vad = BlendshapeBackend(), OpenSmileBackend(), GloveBackend(), SileroVAD()
    out: dict[str, tuple[float, float, float]] = {}

    def timed(name: str, fn: Callable[[], object]) -> object:
        t, c = time.perf_counter(), time.process_time()
        r = fn()
        wall, cpu = time.perf_counter() - t, time.process_time() - c
        out[name] = (seconds / wall, cpu / seconds, _load())
        return r

    timed("vision (decode + blendshapes)", lambda: face.extract(iter_frames(video), 0.04))
    sig = timed("audio (decode + eGeMAPS LLD + func)", lambda: _audio(audio, decode_audio(video)))
    timed(
        "text (sidecar + VAD + GloVe)",
        lambda: text.embed(
            read_sidecar(video.with_suffix(".txt"), lambda: vad.stretches(sig, 16000))
        ),
    )
    try:
        asr = WhisperASR()
    except AsrUnavailable:
        return out
    timed("text (ASR tiny.en + GloVe)", lambda: text.embed(asr.words(sig)))
    return out


def _audio(extractor: object, sig: np.ndarray) -> np.ndarray:
    extractor.extract_with_functionals(sig, 16000)  # type: ignore[attr-defined]
    return sig


def pipeline(root: Path, workers: int, asr: bool, media: float, tmp: Path) -> str:
    """One whole run: ``x real time (wall), CPU-s per video-s (all processes), load``."""
    from mea_cli.extract.driver import ExtractConfig, extract

    out = tmp / f"bench-{workers}-{int(asr)}.h5"
    cache = tmp / f"cache-{workers}-{int(asr)}"
    t, c = time.perf_counter(), _cpu_tree()
    report = extract(root, out, ExtractConfig(asr=asr), workers=workers, cache_dir=cache)
    wall, cpu = time.perf_counter() - t, _cpu_tree() - c
    shutil.rmtree(cache, ignore_errors=True)
    after = media / (wall - report.startup_seconds)
    return (
        f"{media / wall:7.1f}x real time  {cpu / media:.3f} CPU-s per video-s  (load {_load():.1f});"
        f" start-up {report.startup_seconds:.1f} s, {after:.1f}x after it"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--workers-asr", type=int, default=2)
    ap.add_argument("--skip-asr", action="store_true")
    ap.add_argument("--skip-modalities", action="store_true",
                    help="no per-modality figures (short clips: only the whole pipeline)")
    ap.add_argument("--workers", default="1,2", help="worker counts of the whole pipeline")
    args = ap.parse_args()
    from mea_cli.extract.asr import AsrUnavailable, WhisperASR

    try:
        WhisperASR()
        asr_available = True
    except AsrUnavailable:
        asr_available = False
    print(f"machine: {os.cpu_count()} CPU cores, load average {_load():.1f} at start")
    probes = {"start": bench_machine.speed_probe()}
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        sidecar_root = tmp / "sidecar"
        sidecar_root.mkdir()
        media = make_corpus(sidecar_root, args.videos, args.seconds, args.size)
        print(f"corpus: {args.videos} clips x {args.seconds:g} s, {args.size}x{args.size}, 25 fps")
        if not args.skip_modalities:
            print("\nper modality, one process (x real time):")
            for name, (rtf, cps, load) in per_modality(
                sidecar_root / "clip00.mp4", args.seconds
            ).items():
                print(f"  {name:32s} {rtf:7.1f}x  {cps:.4f} CPU-s per video-s  (load {load:.1f})")
        print("\nwhole default pipeline, transcript sidecars (wall clock, start-up included):")
        for w in (int(x) for x in args.workers.split(",")):
            print(f"  workers={w}: {pipeline(sidecar_root, w, False, media, tmp)}")
        if not args.skip_asr and asr_available:
            asr_root = tmp / "asr"
            asr_root.mkdir()
            for p in sidecar_root.glob("*.mp4"):
                shutil.copy(p, asr_root / p.name)
            w = args.workers_asr
            print(f"\nwhole pipeline, text from ASR (no sidecars), workers={w}:")
            print(f"  {pipeline(asr_root, w, True, media, tmp)}")
        elif not args.skip_asr:
            print("\nASR not importable (make install): ASR figures skipped")
    probes["end"] = bench_machine.speed_probe()
    print(f"\nload average at the end: {_load():.1f}")
    print(
        f"{bench_machine.probe_line(probes)} (compare runs made at the same probe time: this "
        "shared machine's own speed moves by up to 2x)"
    )


if __name__ == "__main__":
    main()
