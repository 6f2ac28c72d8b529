"""Media that decode without an error yet are not what their headers say: a file cut off
part-way with its index at the front, audio shorter than openSMILE's analysis window, and a
video stored sideways with a display rotation in its header. Each must give a failure row or
the frames a player shows, never silently short or sideways features.

The media are made here with PyAV: a moving gradient or scikit-image's astronaut photo (a real
face, for MediaPipe), a tone with stretches of silence and noise (a variable bit rate, which
makes FFmpeg's estimated durations wrong).
"""

from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from sampleclips import astronaut, require_media

from mea_cli.artifacts.features import ExtractorInfo, FeatureStore, ModalitySchema
from mea_cli.extract import backends
from mea_cli.extract.driver import ExtractConfig, extract
from mea_cli.extract.media import DecodeStopped, decode_audio, iter_frames, probe
from mea_cli.extract.pipeline import Pipeline

RATE = 16000
STOPPED = re.compile(
    r"^(video |audio )?decoding stopped at (\d+\.\d\d) s of (\d+\.\d\d) s \(truncated or damaged file\?\)$"
)


def gradient(i: int, size: tuple[int, int] = (144, 176)) -> np.ndarray:
    img = np.zeros((*size, 3), np.uint8)
    img[..., 0] = (np.arange(size[1]) * 2 + i * 20) % 256
    img[..., 1] = (np.arange(size[0])[:, None] * 3) % 256
    return img


def sound(seconds: float, rate: int) -> np.ndarray:
    """Silence for the first third, then a tone with noise: an encoder's bit rate varies."""
    t = np.arange(int(seconds * rate)) / rate
    noise = np.random.default_rng(0).standard_normal(t.size)
    tone = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.2 * noise
    return np.where(t < seconds / 3, 0.0, tone).astype(np.float32)


def encode(
    path: Path,
    fmt: str,
    *,
    seconds: float = 2.0,
    vcodec: str | None = "libx264",
    acodec: str | None = "aac",
    arate: int = RATE,
    frames=gradient,
    fps: int = 10,
    rotation: float | None = None,
    faststart: bool = False,
    video_options: dict[str, str] | None = None,
    pix_fmt: str = "yuv420p",
    audio_options: dict[str, str] | None = None,
    vbr: bool = False,
) -> Path:
    """``seconds`` of ``frames(i)`` and/or :func:`sound` in container ``fmt``; ``rotation``
    stores a display rotation (PyAV's counter-clockwise degrees) in the header."""
    path.parent.mkdir(parents=True, exist_ok=True)
    options = {"movflags": "faststart"} if faststart else {}
    options.update(audio_options or {})
    with av.open(str(path), "w", format=fmt, options=options) as c:
        vs = as_ = None
        if vcodec is not None:
            first = frames(0)
            vs = c.add_stream(vcodec, rate=fps)
            vs.width, vs.height, vs.pix_fmt = first.shape[1], first.shape[0], pix_fmt
            vs.options = video_options or ({"preset": "ultrafast"} if vcodec == "libx264" else {})
            if rotation is not None:
                vs.set_display_rotation(rotation)
        if acodec is not None:
            as_ = c.add_stream(acodec, rate=arate)
            as_.layout = "mono"
            if vbr:  # a quality, not a bit rate
                as_.codec_context.qscale = 4
                as_.codec_context.flags |= av.codec.context.Flags.qscale
            else:
                as_.bit_rate = 64000
        if vs is not None:
            for i in range(int(seconds * fps)):
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frames(i)), format="rgb24")
                frame.pts, frame.time_base = i, Fraction(1, fps)
                c.mux(vs.encode(frame))
            c.mux(vs.encode(None))
        if as_ is not None:
            frame = av.AudioFrame.from_ndarray(sound(seconds, arate)[None], format="flt", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = arate, 0, Fraction(1, arate)
            c.mux(as_.encode(frame))
            c.mux(as_.encode(None))
    return path


def cut(path: Path, to: Path, fraction: float = 0.5) -> Path:
    """The first ``fraction`` of ``path``'s bytes, as an interrupted download leaves a file."""
    raw = path.read_bytes()
    to.write_bytes(raw[: int(len(raw) * fraction)])
    return to


# -- decoding: a cut that FFmpeg does not report -----------------------------------------------
def test_a_file_cut_off_with_its_index_in_front_stops_with_a_decode_error(tmp_path: Path) -> None:
    """An MP4 written with its index at the front (faststart) and cut in half opens and decodes
    one stream at a time without an error, just ending early: both streams raise
    :class:`DecodeStopped` saying where decoding stopped, after yielding what decoded."""
    whole = encode(tmp_path / "whole.mp4", "mp4", faststart=True)
    part = cut(whole, tmp_path / "part.mp4")
    assert probe(part).duration == pytest.approx(probe(whole).duration)  # the header is whole
    times = []
    with pytest.raises(DecodeStopped) as video:
        for t, _ in iter_frames(part):
            times.append(t)
    m = STOPPED.match(video.value.problem)
    assert m and m[1] == "video " and m[3] == "2.00", video.value.problem
    assert times and times[-1] < float(m[2]) < 1.5
    with pytest.raises(DecodeStopped) as audio:
        decode_audio(part)
    m = STOPPED.match(audio.value.problem)
    assert m and m[1] == "audio " and float(m[3]) == pytest.approx(2.0, abs=0.1), audio.value.problem
    signal = audio.value.signal  # what decoded before the cut comes with the error
    assert signal is not None and float(m[2]) == pytest.approx(len(signal) / RATE, abs=0.01)
    assert str(part) in str(audio.value) and "\n" not in str(audio.value)
    # the whole file decodes to its end: no error
    assert len(list(iter_frames(whole))) == 20 and len(decode_audio(whole)) >= 1.9 * RATE


# container, video codec, audio codec, audio rate, extra keyword arguments of ``encode``
WHOLE_FILES = {
    "mp4": ("mp4", "libx264", "aac", RATE, {}),
    "mov": ("mov", "libx264", "aac", RATE, {}),
    "mkv": ("matroska", "libx264", "aac", RATE, {}),
    "webm": ("webm", "libvpx", "libopus", 48000, {}),
    "flv": ("flv", "flv", "libmp3lame", 22050, {}),
    "avi": ("avi", "mpeg4", "libmp3lame", 22050, {}),
    "wmv": ("asf", "wmv2", "wmav2", RATE, {}),
    "ts": ("mpegts", "mpeg2video", "mp2", RATE, {}),
    "wav": ("wav", None, "pcm_s16le", RATE, {}),
    "flac": ("flac", None, "flac", RATE, {}),
    "aiff": ("aiff", None, "pcm_s16be", RATE, {}),
    "ogg": ("ogg", None, "libopus", 48000, {}),
    "m4a": ("ipod", None, "aac", RATE, {}),
    # FFmpeg estimates these two's durations from the bit rate: 10.4 s and 18 s for 6 s
    "aac": ("adts", None, "aac", RATE, {}),
    "mp3": ("mp3", None, "libmp3lame", 44100, {"vbr": True, "audio_options": {"write_xing": "0"}}),
}


@pytest.mark.parametrize("ext", sorted(WHOLE_FILES))
def test_whole_files_never_stop_short(tmp_path: Path, ext: str) -> None:
    """No container's whole file reads as cut off, not even those whose durations FFmpeg only
    estimates (ADTS AAC, a VBR MP3 without a Xing header: their headers overstate them)."""
    fmt, vcodec, acodec, arate, kw = WHOLE_FILES[ext]
    path = encode(tmp_path / f"x.{ext}", fmt, seconds=6.0, vcodec=vcodec, acodec=acodec, arate=arate, **kw)
    if vcodec is not None:
        assert len(list(iter_frames(path))) == 60
    assert len(decode_audio(path)) >= 5.9 * RATE


@pytest.mark.parametrize("turns", [1, 2, 3])
def test_display_rotation_turns_frames_as_a_player_shows_them(tmp_path: Path, turns: int) -> None:
    """A picture stored turned by ``turns`` quarter turns, with the display rotation that turns
    it back in its header (as a phone stores a video held upright), decodes upright with
    ``rotate``: the frames as stored, turned back, pixel for pixel, and the picture encoded
    (up to the colour conversion's rounding: lossless H.264 in 4:4:4)."""
    upright = gradient(0, (64, 96))
    lossless = {"qp": "0", "preset": "ultrafast"}
    stored = lambda i: np.rot90(upright, turns)  # noqa: E731
    path = encode(
        tmp_path / "turned.mp4", "mp4", seconds=0.3, acodec=None, frames=stored,
        rotation=-90.0 * turns, video_options=lossless, pix_fmt="yuv444p",
    )  # fmt: skip
    shown = [img for _, img in iter_frames(path, rotate=True)]
    as_stored = [img for _, img in iter_frames(path)]
    assert len(shown) == len(as_stored) == 3
    for img, raw in zip(shown, as_stored, strict=True):
        assert img.shape == upright.shape and img.flags.c_contiguous  # what MediaPipe is handed
        assert np.array_equal(img, np.rot90(raw, -turns))
        assert np.abs(img.astype(int) - upright).max() <= 4
        assert np.abs(raw.astype(int) - np.rot90(upright, turns)).max() <= 4


# -- the pipeline, the store and mea predict ---------------------------------------------------
@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One extraction of: the astronaut upright and stored sideways with a display rotation,
    an MP4 (index at the front) and an MKV cut in half, 0.05 s and 1 s of WAV (no words:
    no sidecars, ASR off)."""
    require_media(espeak=False)
    root = tmp_path_factory.mktemp("hostile")
    face = astronaut(192)
    moving = lambda i: np.roll(face, 2 * (i % 5), axis=1)  # noqa: E731
    kw = {"fps": 25, "arate": RATE}
    # lossless, so that the two differ by the colour conversion's rounding only
    same = {"video_options": {"qp": "0", "preset": "ultrafast"}, "pix_fmt": "yuv444p", **kw}
    encode(root / "upright.mp4", "mp4", seconds=1.0, frames=moving, **same)
    sideways = lambda i: np.rot90(moving(i))  # noqa: E731
    encode(root / "sideways.mp4", "mp4", seconds=1.0, frames=sideways, rotation=-90, **same)
    whole = encode(root.parent / "whole.mp4", "mp4", seconds=2.0, frames=moving, faststart=True, **kw)
    cut(whole, root / "cut.mp4")
    cut(encode(root.parent / "whole.mkv", "matroska", seconds=6.0), root / "cutmkv.mkv")
    encode(root / "tiny.wav", "wav", seconds=0.05, vcodec=None, acodec="pcm_s16le")
    encode(root / "short.wav", "wav", seconds=1.0, vcodec=None, acodec="pcm_s16le")
    out = root.parent / "feats.h5"
    extract(root, out, ExtractConfig(asr=False))
    with FeatureStore(out) as s:
        rows = [(f.video, f.stage, f.message) for f in s.failures]
        schemas = dict(s.modalities)
        samples = {
            str(v): {m: (s.sequence(i, m), s.times(i, m)) for m in ("vision", "audio")}
            for i, v in enumerate(s.samples.video)
        }
    return {"root": root, "out": out, "rows": rows, "schemas": schemas, "samples": samples}


def _rows(store: dict, video: str, stage: str) -> list[str]:
    return [msg for v, st, msg in store["rows"] if v == video and st == stage]


def test_a_cut_clip_keeps_what_decoded_with_a_decode_row(store: dict) -> None:
    """The cut MP4 is a sample of what decoded (as for a decoding error part-way) with one
    ``decode`` row per stream saying where it stopped; the MKV, whose streams state no
    duration of their own, one row against the container's; whole files none."""
    rows = _rows(store, "cut", "decode")
    assert sorted(r.split(" ")[0] for r in rows) == ["audio", "video"], store["rows"]
    for r in rows:
        m = STOPPED.match(r)
        assert m and float(m[2]) < 1.5 and float(m[3]) == pytest.approx(2.0, abs=0.1), r
    got = store["samples"]["cut"]
    for m in ("vision", "audio"):
        x, t = got[m]
        assert len(x) > 0 and t[-1, 1] < 1.6  # the part before the cut, kept
    (mkv,) = _rows(store, "cutmkv", "decode") or [""]
    m = STOPPED.match(mkv)
    assert m and m[1] is None and float(m[3]) == pytest.approx(6.0, abs=0.1), store["rows"]
    for whole in ("upright", "sideways", "tiny", "short"):
        assert not _rows(store, whole, "decode"), store["rows"]


def test_audio_shorter_than_the_analysis_window_is_an_audio_row(store: dict) -> None:
    """0.05 s of audio gives openSMILE nothing to analyse: an empty audio sequence with an
    ``audio`` row saying why (1 s of the same WAV has frames and no row)."""
    assert _rows(store, "tiny", "audio") == [
        "0.05 s of audio: shorter than the 0.10 s analysis window of opensmile, no frames"
    ]
    assert len(store["samples"]["tiny"]["audio"][0]) == 0
    assert not _rows(store, "short", "audio") and len(store["samples"]["short"]["audio"][0]) > 90


def _pose_and_shapes(x: np.ndarray, names: tuple[str, ...]) -> tuple[float, np.ndarray]:
    """Mean head roll (degrees) and mean blendshape scores of a vision sequence."""
    return float(x[:, names.index("head_roll")].mean()), x[:, : names.index("head_pitch")].mean(0)


def test_a_video_stored_sideways_gives_the_upright_features(store: dict) -> None:
    """The face model sees the sideways-stored video as a player shows it: the same head roll
    and blendshapes as the upright video (both lossless, so up to the colour conversion's
    rounding), and the provenance says the frames were turned."""
    vision = store["schemas"]["vision"]
    names = vision.feature_names
    assert vision.extractor.parameters["apply_display_rotation"] is True
    assert vision.extractor.parameters["options"]["display_rotation"] == "true"
    up, side = store["samples"]["upright"]["vision"][0], store["samples"]["sideways"]["vision"][0]
    assert len(up) == len(side) == 15  # a face in every frame kept (15 per second)
    roll_up, shapes_up = _pose_and_shapes(up, names)
    roll_side, shapes_side = _pose_and_shapes(side, names)
    assert abs(roll_side - roll_up) < 1.0  # measured: equal (the same pixels reach the model)
    assert np.abs(shapes_side - shapes_up).max() < 0.02


def _as_before(schema: ModalitySchema) -> ModalitySchema:
    """``schema`` as stores made before ``display_rotation`` recorded it: no option, no
    ``apply_display_rotation``."""
    info = schema.extractor
    params = {k: v for k, v in info.parameters.items() if k != "apply_display_rotation"}
    params["options"] = {k: v for k, v in params["options"].items() if k != "display_rotation"}
    return ModalitySchema(
        schema.name, schema.feature_names, ExtractorInfo(info.name, info.version, params),
        schema.nominal_rate_hz,
    )  # fmt: skip


def test_an_old_record_recreates_frames_as_stored(store: dict) -> None:
    """A checkpoint of a store made before the option re-creates what it was trained on:
    frames as stored (the face on its side: head roll about 90 degrees off the upright's),
    and its vision identity is that of an extraction with ``display_rotation=false``."""
    schemas = store["schemas"]
    new, _ = Pipeline.from_schemas(schemas)
    assert new.face.display_rotation is True
    old_schemas = {**schemas, "vision": _as_before(schemas["vision"])}
    old, _ = Pipeline.from_schemas(old_schemas)
    assert old.face.display_rotation is False
    assert "apply_display_rotation" not in old.face.provenance().parameters
    off = backends.create(backends.BackendSpec.parse("face", None, ["display_rotation=false"]))
    assert backends.identity(off.provenance()) == backends.identity(old_schemas["vision"].extractor)
    names = schemas["vision"].feature_names
    res = old.extract_video("sideways", store["root"] / "sideways.mp4")
    roll_old, _ = _pose_and_shapes(res.features["vision"], names)
    roll_up, _ = _pose_and_shapes(store["samples"]["upright"]["vision"][0], names)
    assert abs(abs(roll_old - roll_up) - 90.0) < 15.0


def test_predict_carries_the_rows_of_each_clip(store: dict) -> None:
    """``mea predict`` re-creates the store's extraction and carries these rows per clip, as it
    carries a decoding error part-way: the cut clip predicted from what decoded (status ok,
    its ``decode`` rows in ``failures``), the 0.05 s WAV with its ``audio`` row and audio
    missing. The model is a stand-in: what is checked is what reaches the report."""
    from mea_cli.predict import api

    class Model:
        batch_size = 8

        def __call__(self, ready: list) -> None:
            for clip, _ in ready:
                clip.prediction = {"score": 0.0}

    pipeline, _ = Pipeline.from_schemas(store["schemas"])
    clips, _ = api._from_videos(store["root"], pipeline, Model(), None)  # type: ignore[arg-type]
    by = {c.clip: c for c in clips}
    cut = by["cut"]
    assert cut.status == "ok" and cut.prediction is not None
    stages = [(f["stage"], f["message"].split(" ")[0]) for f in cut.failures]
    assert ("decode", "video") in stages and ("decode", "audio") in stages
    tiny = by["tiny"]
    assert {"stage": "audio", "message": _rows(store, "tiny", "audio")[0]} in tiny.failures
    assert "audio" in tiny.missing
    assert not any(f["stage"] == "decode" for c in ("upright", "sideways") for f in by[c].failures)


# -- several channels ------------------------------------------------------------------------
def _wav(path: Path, channels: np.ndarray, rate: int = 16000) -> Path:
    """A 16-bit PCM wav of ``channels [C, N]`` (floats in [-1, 1]), as recorders write them."""
    layout = {1: "mono", 2: "stereo", 6: "5.1"}[len(channels)]
    with av.open(str(path), "w") as c:
        s = c.add_stream("pcm_s16le", rate=rate, layout=layout)
        pcm = np.round(channels.T * 32767).astype(np.int16).reshape(1, -1)  # interleaved
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout=layout)
        frame.sample_rate, frame.pts, frame.time_base = rate, 0, Fraction(1, rate)
        c.mux(s.encode(frame))
        c.mux(s.encode(None))
    return path


def _tone(seconds: float = 1.0, rate: int = 16000, peak: float = 0.79) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (peak * np.sin(2 * np.pi * 150 * t) * (1 + 0.3 * np.sin(2 * np.pi * 3 * t)) / 1.3).astype(
        np.float32
    )


@pytest.mark.parametrize("channels", [2, 6])
def test_several_equal_channels_decode_as_the_one_channel(tmp_path: Path, channels: int) -> None:
    """The default mixdown averages the channels: a clip whose channels all carry the same
    signal decodes as that signal (FFmpeg's downmix, the ``ffmpeg`` mixdown of older stores,
    makes it 1.41 times (stereo) to 3.41 times (5.1) as loud, past full scale)."""
    x = _tone()
    mono = decode_audio(_wav(tmp_path / "mono.wav", x[None]))
    many = _wav(tmp_path / "many.wav", np.tile(x, (channels, 1)))
    np.testing.assert_allclose(decode_audio(many), mono, atol=1e-4)
    legacy = decode_audio(many, mixdown="ffmpeg")
    assert np.abs(legacy).max() > 1.0 > np.abs(decode_audio(many)).max()


def test_several_channels_give_the_features_of_one(tmp_path: Path) -> None:
    """openSMILE's descriptors of a stereo clip of two equal channels are those of the mono
    clip (loudness, F0 and the rest): the stereo clip no longer wraps round past full scale."""
    from mea_cli.extract.audio import OpenSmileBackend

    x = _tone(2.0)
    mono = decode_audio(_wav(tmp_path / "mono.wav", x[None]))
    stereo = decode_audio(_wav(tmp_path / "stereo.wav", np.stack([x, x])))
    smile = OpenSmileBackend()
    a, _ = smile.extract(mono, 16000)
    b, _ = smile.extract(stereo, 16000)
    np.testing.assert_allclose(b, a, rtol=1e-3, atol=1e-3)
    wrapped, _ = smile.extract(decode_audio(tmp_path / "stereo.wav", mixdown="ffmpeg"), 16000)
    assert not np.allclose(wrapped, a, rtol=1e-2, atol=1e-2)  # what the older mixdown gave


def test_an_old_audio_record_recreates_the_ffmpeg_mixdown() -> None:
    """A store made before the option records no ``mixdown``: its checkpoints re-create
    FFmpeg's downmix, with the identity of that record; new extractions record ``mean``."""
    from mea_cli.extract.audio import OpenSmileBackend

    new = OpenSmileBackend().provenance()
    assert new.parameters["options"]["mixdown"] == "mean"
    old_params = dict(OpenSmileBackend(mixdown="ffmpeg").provenance().parameters)
    old_params["options"] = {"set": "egemaps"}  # what a store of 2026-12-06 holds
    old = ExtractorInfo(new.name, new.version, old_params)
    recreated = backends.from_provenance("audio", old)
    assert recreated.backend.mixdown == "ffmpeg"
    assert backends.identity(recreated.backend.provenance()) == backends.identity(old)
    assert backends.identity(new) != backends.identity(old)
