"""Real-time factor of ``mea extract`` (seconds of video per second of compute or wall time).

Makes talking-face clips offline (scikit-image's astronaut photo + espeak-ng speech, see
:mod:`mea_cli.extract.sampleclips`; 25 fps, 256x256 unless ``--size``), then measures

1. each modality alone in this process: vision (decode + MediaPipe blendshapes), audio
   (decode + openSMILE eGeMAPS), text from a transcript sidecar (GloVe), text from ASR
   (faster-whisper tiny.en, when installed);
2. the whole default pipeline with transcript sidecars, 1 and 2 workers, wall clock from the
   call to the packed store (process start-up and model loading included);
3. the whole pipeline with text from ASR (no sidecars), with ``--workers-asr`` workers.

Run: ``.venv/bin/python benchmarks/bench_extract.py --videos 4 --seconds 60``. The figures are
CPU timings on whatever machine runs it; they say nothing about a GPU.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

SENTENCE = "the quick brown fox jumps over the lazy dog and everybody smiles at the camera"


def make_corpus(root: Path, n: int, seconds: float, size: int) -> float:
    from mea_cli.extract.media import AUDIO_RATE
    from mea_cli.extract.sampleclips import astronaut, speak, write_clip

    voice = speak(SENTENCE)
    pause = np.zeros(int(0.8 * AUDIO_RATE), np.float32)
    unit = np.concatenate([voice, pause])
    reps = int(np.ceil(seconds * AUDIO_RATE / len(unit)))
    audio = np.tile(unit, reps)[: int(seconds * AUDIO_RATE)]
    img = astronaut(size)
    for k in range(n):
        path = root / f"clip{k:02d}.mp4"
        write_clip(path, img, seconds, audio=audio)
        (root / f"clip{k:02d}.txt").write_text(" ".join([SENTENCE] * reps) + "\n")
    return n * seconds


def per_modality(video: Path, seconds: float) -> dict[str, float]:
    from mea_cli.extract.audio import AudioExtractor, speech_span
    from mea_cli.extract.face import BlendshapeExtractor
    from mea_cli.extract.glove import embed_tokens, load_vectors
    from mea_cli.extract.media import decode_audio, iter_frames
    from mea_cli.extract.text import WhisperASR, asr_available, read_sidecar, to_tokens

    face, audio, kv = BlendshapeExtractor(), AudioExtractor(), load_vectors()
    out = {}
    t = time.perf_counter()
    face.extract(iter_frames(video), 0.04)
    out["vision (decode + blendshapes)"] = seconds / (time.perf_counter() - t)
    t = time.perf_counter()
    sig = decode_audio(video)
    audio.extract(sig, 16000)
    out["audio (decode + eGeMAPS LLD)"] = seconds / (time.perf_counter() - t)
    t = time.perf_counter()
    words = read_sidecar(video.with_suffix(".txt"), speech_span(sig, 16000, seconds))
    embed_tokens(kv, to_tokens(words)[0])
    out["text (sidecar + GloVe)"] = seconds / (time.perf_counter() - t)
    if asr_available():
        asr = WhisperASR()
        t = time.perf_counter()
        embed_tokens(kv, to_tokens(asr.words(sig))[0])
        out["text (ASR tiny.en + GloVe)"] = seconds / (time.perf_counter() - t)
    return out


def pipeline(root: Path, workers: int, asr: bool, media: float, tmp: Path) -> float:
    from mea_cli.extract.driver import ExtractConfig, extract

    out = tmp / f"bench-{workers}-{int(asr)}.h5"
    cache = tmp / f"cache-{workers}-{int(asr)}"
    t = time.perf_counter()
    extract(root, out, ExtractConfig(asr=asr), workers=workers, cache_dir=cache)
    wall = time.perf_counter() - t
    shutil.rmtree(cache, ignore_errors=True)
    return media / wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--workers-asr", type=int, default=2)
    ap.add_argument("--skip-asr", action="store_true")
    args = ap.parse_args()
    from mea_cli.extract.text import asr_available

    print(f"machine: {os.cpu_count()} CPU cores, load average {os.getloadavg()[0]:.1f} at start")
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        sidecar_root = tmp / "sidecar"
        sidecar_root.mkdir()
        media = make_corpus(sidecar_root, args.videos, args.seconds, args.size)
        print(f"corpus: {args.videos} clips x {args.seconds:g} s, {args.size}x{args.size}, 25 fps")
        print("\nper modality, one process (x real time):")
        for name, rtf in per_modality(sidecar_root / "clip00.mp4", args.seconds).items():
            print(f"  {name:32s} {rtf:7.1f}x")
        print("\nwhole default pipeline, transcript sidecars (wall clock, start-up included):")
        for w in (1, 2):
            print(f"  workers={w}: {pipeline(sidecar_root, w, False, media, tmp):7.1f}x real time")
        if not args.skip_asr and asr_available():
            asr_root = tmp / "asr"
            asr_root.mkdir()
            for p in sidecar_root.glob("*.mp4"):
                shutil.copy(p, asr_root / p.name)
            w = args.workers_asr
            print(f"\nwhole pipeline, text from ASR (no sidecars), workers={w}:")
            print(f"  {pipeline(asr_root, w, True, media, tmp):7.1f}x real time")
        elif not args.skip_asr:
            print("\nASR not installed (pip install 'mea-cli[asr]'): ASR figures skipped")
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
