"""What each lever of the vision stage of ``mea extract`` costs, one at a time (issue 27).

Makes one talking-face clip as ``bench_extract.py`` does (25 fps, 256x256 unless ``--size``),
then runs the vision stage (decode + MediaPipe Face Landmarker) of that clip in this process
under each setting below and prints, per setting, CPU seconds of this process (user + sys, every
thread) per second of video -- robust to a busy machine, unlike wall time -- the real-time
factor on the wall clock, and the 1-minute load average beside it:

* ``decode only``: PyAV decoding and RGB conversion, at the native rate / at 15 Hz / at the
  size a landmarker gets (``max_side``);
* ``vision``: the default pipeline's stage, then each lever alone: the landmarker in IMAGE mode
  (a face detection on every frame: what VIDEO mode's tracking saves), frames decoded straight
  to ``--model-side`` pixels, frames sampled at ``--fps`` Hz, decoding in a thread that runs
  ahead of the landmarker (``overlap``);
* decoding levers: PyAV's ``to_ndarray`` per frame (a new swscale context each time, the old
  way) against one converter per stream (the default), FFmpeg's decoder threads off;
* the audio stage: openSMILE's LLDs and Functionals of the whole clip as two calls (the old
  way) and as one run with both sinks (the default);
* the per-file costs that loading once per worker saves: a landmarker's creation, the
  backends of a pipeline, an ASR model (which a run whose clips all have sidecars never loads);
* how far each lever moves the features: mean absolute difference of the 52 blendshape
  scores at the frames both runs kept, against the default at the native rate.

    .venv/bin/python benchmarks/bench_extract_levers.py [--seconds 20] [--repeats 2] [--json F]

CPU timings of this machine; nothing here is a GPU figure.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

sys.path.append(str(Path(__file__).resolve().parent))  # sibling bench_* modules, after site-packages

import bench_extract

from mea_cli.extract.audio import OpenSmileBackend
from mea_cli.extract.face import BlendshapeBackend
from mea_cli.extract.media import decode_audio, iter_frames

Frames = Iterable[tuple[float, np.ndarray]]


def load() -> float:
    return round(os.getloadavg()[0], 2)


def measure(fn: Callable[[], Any], seconds: float, repeats: int) -> tuple[dict[str, float], Any]:
    """Best of ``repeats`` runs of ``fn`` by CPU time: CPU-s per video-s, x real time, load."""
    best: dict[str, float] | None = None
    out = None
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        out = fn()
        wall, cpu = time.perf_counter() - t, time.process_time() - c
        row = {"cpu_s_per_video_s": round(cpu / seconds, 4), "x_real_time": round(seconds / wall, 2),
               "load": load()}  # fmt: skip
        if best is None or row["cpu_s_per_video_s"] < best["cpu_s_per_video_s"]:
            best = row
    assert best is not None
    return best, out


def drain(frames: Frames) -> int:
    return sum(1 for _ in frames)


def prefetched(frames: Frames, depth: int = 8) -> Iterator[tuple[float, np.ndarray]]:
    """``frames`` decoded in a thread of their own, up to ``depth`` ahead of the consumer
    (PyAV releases the GIL while decoding, the landmarker while it runs)."""
    q: queue.Queue[Any] = queue.Queue(depth)
    end = object()

    def feed() -> None:
        try:
            for item in frames:
                q.put(item)
        finally:
            q.put(end)

    threading.Thread(target=feed, daemon=True).start()
    while (item := q.get()) is not end:
        yield item


def decode_only(clip: Path, fps: float, reuse: bool = True, threads: str = "AUTO") -> int:
    """Frames kept at ``fps`` converted to RGB: with one reused converter (as ``iter_frames``)
    or PyAV's ``to_ndarray`` per frame, FFmpeg's decoder threads as ``threads`` says."""
    import av
    from av.video.reformatter import VideoReformatter

    rgb, n, next_tick = VideoReformatter(), 0, 0.0
    with av.open(str(clip)) as c:
        stream = c.streams.video[0]
        stream.thread_type = threads
        for frame in c.decode(stream):
            t = float(frame.pts * stream.time_base)
            if t + 1e-6 < next_tick:
                continue
            next_tick = (np.floor(t * fps + 1e-6) + 1) / fps
            img = rgb.reformat(frame, format="rgb24").to_ndarray() if reuse else frame.to_ndarray(format="rgb24")
            n += img.shape[0] > 0
    return n


def image_mode(backend: BlendshapeBackend, frames: Frames) -> tuple[np.ndarray, np.ndarray, int]:
    """The landmarker in IMAGE mode (face detection on every frame), features as in VIDEO."""
    import mediapipe as mp
    from mediapipe.tasks.python import BaseOptions, vision

    opts = vision.FaceLandmarkerOptions(
        base_options=BaseOptions(model_asset_buffer=backend._model_bytes),
        running_mode=vision.RunningMode.IMAGE, num_faces=1,
        min_face_detection_confidence=backend.min_confidence,
        min_face_presence_confidence=backend.min_confidence,
        output_face_blendshapes=True, output_facial_transformation_matrixes=True,
    )  # fmt: skip
    rows, times, seen = [], [], 0
    with vision.FaceLandmarker.create_from_options(opts) as lm:
        for t, img in frames:
            seen += 1
            res = lm.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(img)))
            if res.face_blendshapes:
                rows.append([c.score for c in res.face_blendshapes[0]])
                times.append((t, t))
    return np.asarray(rows, np.float32), np.asarray(times), seen


def blendshape_gap(ref: tuple[np.ndarray, np.ndarray, int], got: tuple[np.ndarray, np.ndarray, int]) -> float:
    """Mean |difference| of the 52 blendshape scores at the frames both runs kept."""
    at = {round(float(t), 3): i for i, t in enumerate(ref[1][:, 0])}
    pairs = [(at[round(float(t), 3)], j) for j, t in enumerate(got[1][:, 0]) if round(float(t), 3) in at]
    if not pairs:
        return float("nan")
    i, j = map(list, zip(*pairs, strict=True))
    return round(float(np.abs(ref[0][i, :52] - got[0][j, :52]).mean()), 5)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--fps", type=float, default=15.0, help="the sampling lever's rate")
    ap.add_argument("--model-side", type=int, default=192, help="the decode-size lever's side")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    rows: list[dict[str, Any]] = []
    print(f"machine: {os.cpu_count()} CPU cores, load average {load()} at start", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        bench_extract.make_corpus(Path(tmp), 1, a.seconds, a.size)
        clip = Path(tmp) / "clip00.mp4"
        s = a.seconds

        def row(name: str, fn: Callable[[], Any], ref: Any = None) -> Any:
            r, out = measure(fn, s, a.repeats)
            if ref is not None:
                r["blendshape_mean_abs_diff"] = blendshape_gap(ref, out)
            rows.append({"setting": name, **r})
            gap = f"  |d blendshape| {r['blendshape_mean_abs_diff']}" if ref is not None else ""
            print(f"  {name:48s} {r['cpu_s_per_video_s']:.4f} CPU-s/video-s  {r['x_real_time']:6.1f}x"
                  f"  (load {r['load']}){gap}", flush=True)  # fmt: skip
            return out

        print(f"\none {s:g} s clip, {a.size}x{a.size}, 25 fps; best of {a.repeats} by CPU time:")
        row("decode only, 25 fps, full size", lambda: drain(iter_frames(clip)))
        row(f"decode only, {a.fps:g} Hz", lambda: drain(iter_frames(clip, a.fps)))
        row(f"decode only, max_side {a.model_side}", lambda: drain(iter_frames(clip, None, a.model_side)))
        row(f"decode only, {a.fps:g} Hz, to_ndarray per frame (was default)", lambda: decode_only(clip, a.fps, False))
        row(f"decode only, {a.fps:g} Hz, one converter per stream", lambda: decode_only(clip, a.fps))
        row(f"decode only, {a.fps:g} Hz, one converter, decoder threads off",
            lambda: decode_only(clip, a.fps, threads="NONE"))  # fmt: skip
        smile = OpenSmileBackend()
        signal = decode_audio(clip)
        row("audio: eGeMAPS LLD + Functionals, two calls (was default)",
            lambda: (smile.extract(signal, 16000), smile.functionals(signal, 16000)))  # fmt: skip
        row("audio: eGeMAPS LLD + Functionals, one run (both sinks)",
            lambda: smile.extract_with_functionals(signal, 16000))  # fmt: skip
        native = BlendshapeBackend()
        sampled = BlendshapeBackend(fps=a.fps)
        small = BlendshapeBackend(max_side=a.model_side)

        def vision(b: BlendshapeBackend, wrap: Callable[[Frames], Frames] = lambda f: f) -> Any:
            return lambda: b.extract(wrap(iter_frames(clip, b.fps, b.max_side)), 1 / (b.fps or 25))

        ref = row("vision: VIDEO mode, 25 fps, full size (was default)", vision(native))
        row("  lever: IMAGE mode (detect every frame)", lambda: image_mode(native, iter_frames(clip)), ref)
        row(f"  lever: decode to max_side {a.model_side}", vision(small), ref)
        row(f"  lever: sample at {a.fps:g} Hz", vision(sampled), ref)
        row("  lever: overlap decode and inference", vision(native, prefetched), ref)
        both = BlendshapeBackend(fps=a.fps, max_side=a.model_side)
        row(f"  {a.fps:g} Hz + max_side {a.model_side}", vision(both), ref)

        print("\nper-file and per-worker costs (CPU s and wall s, once):")
        costs: dict[str, dict[str, float]] = {}

        def once(name: str, fn: Callable[[], Any]) -> None:
            t, c = time.perf_counter(), time.process_time()
            fn()
            costs[name] = {"cpu_s": round(time.process_time() - c, 3),
                           "wall_s": round(time.perf_counter() - t, 3), "load": load()}  # fmt: skip
            print(f"  {name:48s} {costs[name]['cpu_s']:.3f} CPU-s  {costs[name]['wall_s']:.3f} s"
                  f"  (load {costs[name]['load']})", flush=True)  # fmt: skip

        once("create + close one landmarker (VIDEO mode)", lambda: native._landmarker().close())
        from mea_cli.extract.pipeline import ExtractConfig, Pipeline

        once("build a worker's pipeline (face, audio, text)", lambda: Pipeline.from_config(ExtractConfig()).schemas())
        try:
            from mea_cli.extract.asr import WhisperASR

            once("load the ASR model (tiny.en)", WhisperASR)
        except Exception as err:  # noqa: BLE001 - reported, not hidden
            print(f"  ASR not loadable here: {err}")
    print(f"\nload average at the end: {load()}")
    if a.json:
        a.json.write_text(json.dumps({"seconds": a.seconds, "size": a.size, "rows": rows,
                                      "once": costs, "cpu_count": os.cpu_count()}, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
