"""Media decoding with PyAV (FFmpeg inside the wheel; no system ffmpeg needed).

* :func:`find_media` walks a folder recursively and keeps every file FFmpeg reads as video or
  audio: files with a known media extension (:data:`MEDIA_EXTENSIONS`) are taken as they are
  (one that will not open becomes a ``decode`` failure later), any other file is probed
  (:func:`is_media`: FFmpeg reads its header, nothing is decoded). The rest is returned by
  name, so that the summary can list it.
* :func:`probe` opens a file once and says what it holds (duration, streams, frame rate).
  Audio-only files (``.wav``, ``.mp3``, ...) and files whose only picture is cover art are
  ``has_video=False``: their vision sequence stays empty.
* :func:`iter_frames` yields ``(seconds, RGB uint8 [H, W, 3])`` at the native rate, or
  resampled down to ``fps`` by dropping frames (never duplicating them; a dropped frame is
  never converted to RGB), turned upright as the file's display rotation says when asked
  (``rotate``: as a player shows them); :func:`prefetch` decodes them in a thread ahead of
  the consumer.
* :func:`decode_audio` returns the first audio stream as mono float32 at 16 kHz, the rate the
  openSMILE feature sets and Whisper expect.

Every decoding problem raises :class:`MediaError` (a :class:`~mea_cli.errors.MeaError`) with
the file name; the extraction driver turns it into a failure-table row and goes on. A stream
that ends well short of the duration its header states (:func:`stops_short`) is a problem
too, even where FFmpeg itself reports no error (a file cut off part-way with its index at the
front: decoding one stream just ends early): :class:`DecodeStopped`, with what was decoded.
"""

from __future__ import annotations

import math
import os
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from mea_cli.errors import MeaError

VIDEO_EXTENSIONS: frozenset[str] = frozenset(
    {".mp4", ".m4v", ".mkv", ".avi", ".mov", ".webm", ".mpg", ".mpeg", ".flv", ".wmv", ".asf",
     ".3gp", ".3g2", ".ts", ".mts", ".m2ts", ".ogv", ".vob"}
)  # fmt: skip
AUDIO_EXTENSIONS: frozenset[str] = frozenset(
    {".wav", ".mp3", ".m4a", ".flac", ".ogg", ".oga", ".opus", ".aac", ".wma", ".aif", ".aiff"}
)
MEDIA_EXTENSIONS: frozenset[str] = VIDEO_EXTENSIONS | AUDIO_EXTENSIONS
AUDIO_RATE = 16_000
# demuxers whose durations are read from the file's header or index. The others' are estimated
# -- from the bit rate (ADTS AAC, MP3 without a Xing header: measured 10.44 s for a 6.08 s AAC
# file and 17.95 s for a 6.03 s VBR MP3) or from the last timestamps in the file (Ogg, MPEG-TS),
# which cannot show a cut -- and are never compared with what decodes (:func:`stated_duration`)
_STATED_DURATION_FORMATS = frozenset(
    {"mov", "mp4", "matroska", "webm", "avi", "asf", "wav", "w64", "flac", "aiff", "flv"}
)
SHORT_BY_S = 0.5
SHORT_BY_FRACTION = 0.1
"""A stream whose decoded part ends more than ``max(SHORT_BY_S, SHORT_BY_FRACTION * stated)``
seconds before its stated duration has stopped short (:func:`stops_short`): far beyond what
a whole file's streams differ from their headers by (encoder priming, the last frame's length:
at most 0.07 s on whole 6-s files of 21 container and codec pairs, docs/extraction.md)."""
# demuxers of still pictures (a photo has a "video stream" of one frame, but is no clip) and
# of text art (FFmpeg's tty demuxer renders .txt/.nfo files as video)
_IMAGE_FORMATS = ("image2", "gif", "apng", "tty")


class MediaError(MeaError):
    """A media file that cannot be opened or decoded.

    ``partial`` carries what a face extractor finished before a :class:`DecodeStopped`:
    ``(features, times, frames seen)``.
    """

    partial: tuple[np.ndarray, np.ndarray, int] | None = None

    def __init__(self, path: object, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


def is_media(path: str | os.PathLike[str]) -> bool:
    """Whether FFmpeg reads ``path`` as audio or video (a clip, not a still picture).

    Cheap: FFmpeg reads the header and at most a few packets to find the streams; nothing is
    decoded to the end. A file that will not open is not media.
    """
    try:
        with av.open(str(path), mode="r") as c:
            if c.streams.audio:
                return True
            name = c.format.name
            if any(n in _IMAGE_FORMATS or n.endswith("_pipe") for n in name.split(",")):
                return False
            return _video_stream(c) is not None
    except (av.FFmpegError, OSError, ValueError, UnicodeDecodeError):
        return False


def find_media(root: str | os.PathLike[str]) -> tuple[list[Path], list[Path]]:
    """Media files under ``root`` (recursive, sorted) and the other files, by path.

    A file with a known media extension counts without probing; any other regular file is
    probed with :func:`is_media`. ``root`` may also be a single file, which must be media.
    Hidden files and folders (a leading dot, such as our own ``.cache`` folders) are ignored
    and not listed.
    """
    root = Path(root)
    if not root.exists():
        raise MediaError(root, "no such file or folder")
    if root.is_file():
        if root.suffix.lower() not in MEDIA_EXTENSIONS and not is_media(root):
            raise MediaError(root, "not a video or audio file FFmpeg can read")
        return [root], []
    media: list[Path] = []
    others: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            path = Path(dirpath) / name
            known = path.suffix.lower() in MEDIA_EXTENSIONS
            # is_file: never open a FIFO or a device (it could block forever)
            if known or (path.is_file() and is_media(path)):
                media.append(path)
            else:
                others.append(path)
    return sorted(media), others


@dataclass(frozen=True)
class MediaInfo:
    """What a media file holds."""

    path: str
    duration: float  # seconds (longest stream), NaN when the container does not say
    has_video: bool
    has_audio: bool
    fps: float  # average frame rate of the first video stream (NaN without video)
    width: int
    height: int
    # the container's duration where its header states one (:func:`stated_duration`), else
    # NaN: what the longest decoded stream must reach (:func:`stops_short`)
    stated: float = float("nan")


def _video_stream(c: av.container.InputContainer) -> av.VideoStream | None:
    """The first video stream that is a moving picture: not an MP3's or M4A's cover art
    (a stream with the ``attached_pic`` disposition)."""
    for s in c.streams.video:
        if not s.disposition & av.stream.Disposition.attached_pic:
            return s
    return None


def stated_duration(
    c: av.container.InputContainer, stream: av.stream.Stream | None = None
) -> float | None:
    """Seconds that ``stream``'s header gives as its own duration (without ``stream``: the
    container's), or ``None`` when it gives none (Matroska and FLV streams have none of their
    own) or the format's durations are estimated rather than read (``_STATED_DURATION_FORMATS``)."""
    if not any(n in _STATED_DURATION_FORMATS for n in c.format.name.split(",")):
        return None
    if stream is None:
        seconds = c.duration / av.time_base if c.duration is not None else None
    elif stream.duration is not None and stream.time_base is not None:
        seconds = float(stream.duration * stream.time_base)
    else:
        seconds = None
    return seconds if seconds is not None and math.isfinite(seconds) and seconds > 0 else None


def stops_short(decoded: float, stated: float | None) -> bool:
    """Whether a stream decoded to ``decoded`` seconds ends well short of the ``stated`` ones:
    by more than :data:`SHORT_BY_S` and :data:`SHORT_BY_FRACTION` of them (no statement: no)."""
    if stated is None or not math.isfinite(stated):
        return False
    return stated - decoded > max(SHORT_BY_S, SHORT_BY_FRACTION * stated)


def stopped_at(what: str, decoded: float, stated: float) -> str:
    """The one-line problem of a stream that :func:`stops_short` (``what``: "video decoding")."""
    return f"{what} stopped at {decoded:.2f} s of {stated:.2f} s (truncated or damaged file?)"


def _open(path: Path) -> av.container.InputContainer:
    if not path.exists():
        raise MediaError(path, "broken symbolic link" if path.is_symlink() else "no such file")
    if path.stat().st_size == 0:
        raise MediaError(path, "empty file (0 bytes)")
    try:
        return av.open(str(path), mode="r")
    except (av.FFmpegError, OSError, ValueError, UnicodeDecodeError) as err:
        raise MediaError(path, f"cannot open as media (truncated or not a video?): {err}") from None


def probe(path: str | os.PathLike[str]) -> MediaInfo:
    """Open ``path`` and describe its streams, without decoding them."""
    path = Path(path)
    with _open(path) as c:
        vs = _video_stream(c)
        has_audio = bool(c.streams.audio)
        if vs is None and not has_audio:
            raise MediaError(path, "no video and no audio stream")
        duration = float("nan")
        if c.duration is not None:
            duration = c.duration / av.time_base
        else:
            for s in c.streams:
                if s.duration is not None and s.time_base is not None:
                    d = float(s.duration * s.time_base)
                    duration = d if np.isnan(duration) else max(duration, d)
        fps = float("nan")
        width = height = 0
        if vs is not None:
            rate = vs.average_rate or vs.base_rate or vs.guessed_rate
            fps = float(rate) if rate else float("nan")
            width, height = vs.codec_context.width, vs.codec_context.height
        stated = stated_duration(c) or float("nan")
        return MediaInfo(str(path), duration, vs is not None, has_audio, fps, width, height, stated)


def _scaled_size(width: int, height: int, max_side: int) -> tuple[int, int] | None:
    if max_side <= 0 or max(width, height) <= max_side:
        return None
    scale = max_side / max(width, height)
    # even sizes keep swscale on its fast paths
    return max(2, int(round(width * scale / 2)) * 2), max(2, int(round(height * scale / 2)) * 2)


class DecodeStopped(MediaError):
    """Decoding broke off part-way (a truncated file); what came before it is usable.

    Raised on a decoding error after the first frame, and where a stream's decoded part
    :func:`stops_short` of the duration its header states. ``signal`` carries the samples
    :func:`decode_audio` decoded before the break (``partial``: a face extractor's steps).
    """

    signal: np.ndarray | None = None


def require_display_rotation() -> None:
    """Refuse to extract with display rotation on a PyAV that cannot read it (frames would
    silently stay as stored while the provenance says they were turned)."""
    if not hasattr(av.VideoFrame, "rotation"):
        raise MeaError(
            f"PyAV {av.__version__} cannot read a video's display rotation (no "
            "VideoFrame.rotation): upgrade it (pip install -U av), or pass "
            "--face-opt display_rotation=false"
        )


def _quarter_turns(frame: av.VideoFrame) -> int:
    """How many times ``np.rot90`` turns a decoded frame to show it as a player does: the
    display matrix's counter-clockwise angle (PyAV's ``VideoFrame.rotation``, e.g. -90 for
    a phone held upright), rounded to quarter turns (a flip in the matrix is not applied)."""
    return int(round(float(frame.rotation) / 90.0)) % 4


def iter_frames(
    path: str | os.PathLike[str], fps: float | None = None, max_side: int = 0, rotate: bool = False
) -> Iterator[tuple[float, np.ndarray]]:
    """Yield ``(time in seconds, RGB uint8 frame [H, W, 3])`` from the first video stream.

    ``fps`` (optional) keeps at most that many frames per second, choosing the first frame at
    or after each tick of a ``1/fps`` grid. ``max_side`` (0 = off) shrinks frames whose longer
    side exceeds it, which speeds up colour conversion on HD video. ``rotate`` turns each frame
    as the file's display rotation says (a phone video stored sideways comes out upright, as a
    player shows it; without it, frames come as stored). A decoding error after the first frame
    raises :class:`DecodeStopped` so the caller can keep the frames it already has, and so does
    a stream that ends without an error well short of its stated duration (:func:`stops_short`:
    FFmpeg decoding one stream of a file cut off part-way just stops).
    """
    path = Path(path)
    c = _open(path)
    try:
        if not c.streams.video:
            raise MediaError(path, "no video stream")
        stream = c.streams.video[0]
        stream.thread_type = "AUTO"
        base = stream.start_time * stream.time_base if stream.start_time is not None else 0.0
        size = _scaled_size(stream.codec_context.width, stream.codec_context.height, max_side)
        period = 1.0 / float(stream.average_rate or 25)
        # one converter for the whole stream: ``frame.to_ndarray(format=...)`` makes a new one
        # (a new swscale context) for every frame, 3x the cost of the conversion itself; the
        # same pixels either way
        rgb = VideoReformatter()
        next_tick = 0.0
        n = 0
        last_t = -1.0
        end = 0.0  # where the decoded frames end: the last one's time plus its duration
        try:
            for frame in c.decode(stream):
                if frame.pts is None:
                    t = last_t + period
                else:
                    t = float(frame.pts * stream.time_base - base)
                if t <= last_t:  # repeated/out-of-order timestamps in broken files
                    continue
                last_t = t
                ticks = getattr(frame, "duration", None)  # PyAV >= 13
                length = float(ticks * stream.time_base) if ticks else period
                end = max(end, t + length)
                if fps is not None:
                    if t + 1e-6 < next_tick:
                        continue
                    next_tick = (np.floor(t * fps + 1e-6) + 1) / fps
                if size is not None:
                    img = rgb.reformat(frame, size[0], size[1], "rgb24").to_ndarray()
                else:
                    img = rgb.reformat(frame, format="rgb24").to_ndarray()
                if rotate and (turns := _quarter_turns(frame)):
                    img = np.ascontiguousarray(np.rot90(img, turns))
                n += 1
                yield max(t, 0.0), img
        except (av.FFmpegError, OSError, ValueError) as err:
            if n == 0:
                raise MediaError(path, f"cannot decode video: {err}") from None
            raise DecodeStopped(
                path, f"video decoding stopped after {last_t:.2f} s: {err}"
            ) from None
        stated = stated_duration(c, stream)
        if stops_short(end, stated):
            assert stated is not None
            raise DecodeStopped(path, stopped_at("video decoding", end, stated))
    finally:
        c.close()


def prefetch(
    frames: Iterator[tuple[float, np.ndarray]], depth: int = 8
) -> Iterator[tuple[float, np.ndarray]]:
    """``frames``, decoded in a thread of their own up to ``depth`` frames ahead of the consumer,
    so that decoding overlaps the face model (PyAV and MediaPipe both release the GIL).

    The same frames in the same order; an exception of the decoder (a :class:`DecodeStopped`
    part-way) is raised in the consumer where the frame after the last good one would have
    come. When the consumer stops early, the decoder is told to stop and closes its file.
    """
    q: queue.Queue[tuple[float, np.ndarray] | BaseException | None] = queue.Queue(depth)
    stop = threading.Event()

    def offer(item: tuple[float, np.ndarray] | BaseException | None) -> bool:
        """Put ``item`` unless the consumer has stopped; whether it was put."""
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def decode() -> None:
        try:
            for item in frames:
                if not offer(item):
                    return
            offer(None)
        except BaseException as err:  # handed to the consumer, raised there
            offer(err)
        finally:
            frames.close()  # type: ignore[attr-defined]

    worker = threading.Thread(target=decode, name="mea-decode", daemon=True)
    worker.start()
    try:
        while (item := q.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        worker.join()


MIXDOWNS: tuple[str, ...] = ("mean", "ffmpeg")
"""How several channels become one: ``mean``, their average, clipped to [-1, 1] (the level of
one channel; the default), or ``ffmpeg``, FFmpeg's own downmix as stores made before
2026-12-07 have it: each channel at -3 dB and summed, so two equal channels come out 1.41
times as loud and a loud stereo clip goes past full scale, where openSMILE's 16-bit input
wraps round (docs/extraction.md, "Several channels")."""


def decode_audio(
    path: str | os.PathLike[str], rate: int = AUDIO_RATE, mixdown: str = "mean"
) -> np.ndarray:
    """The first audio stream as mono float32 samples at ``rate`` Hz (PyAV's resampler), its
    channels made one as ``mixdown`` says (:data:`MIXDOWNS`).

    Raises :class:`MediaError` when there is no audio stream or nothing decodes, and
    :class:`DecodeStopped` carrying the samples decoded before the break (``signal``) when a
    file breaks off part-way: on a decoding error, or where the samples end well short of the
    stream's stated duration (:func:`stops_short`).
    """
    path = Path(path)
    c = _open(path)
    try:
        if not c.streams.audio:
            raise MediaError(path, "no audio stream")
        stream = c.streams.audio[0]
        if mixdown not in MIXDOWNS:
            raise ValueError(f"mixdown must be one of {', '.join(MIXDOWNS)}, not {mixdown!r}")
        if mixdown == "mean":  # every channel kept (planar), averaged below
            resampler = av.AudioResampler(format="fltp", layout=None, rate=rate)
        else:
            resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)

        def mono(out: av.AudioFrame) -> np.ndarray:
            a = out.to_ndarray()
            return a.mean(axis=0) if mixdown == "mean" else a.reshape(-1)

        chunks: list[np.ndarray] = []
        broke: str | None = None
        try:
            for frame in c.decode(stream):
                frame.pts = None  # let the resampler count samples itself
                for out in resampler.resample(frame):
                    chunks.append(mono(out))
        except (av.FFmpegError, OSError, ValueError) as err:
            if not chunks:
                raise MediaError(path, f"cannot decode audio: {err}") from None
            broke = str(err)
        for out in resampler.resample(None):
            chunks.append(mono(out))
        if not chunks:
            raise MediaError(path, "audio stream holds no samples")
        signal = np.concatenate(chunks).astype(np.float32, copy=False)
        if mixdown == "mean":  # float sources may exceed full scale; 16-bit input must not wrap
            np.clip(signal, -1.0, 1.0, out=signal)
        seconds = len(signal) / rate
        stated = stated_duration(c, stream)
        if broke is not None:
            stopped = DecodeStopped(path, f"audio decoding stopped after {seconds:.2f} s: {broke}")
        elif stops_short(seconds, stated):
            assert stated is not None
            stopped = DecodeStopped(path, stopped_at("audio decoding", seconds, stated))
        else:
            return signal
        stopped.signal = signal
        raise stopped
    finally:
        c.close()
