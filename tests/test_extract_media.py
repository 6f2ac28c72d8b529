"""Which files ``mea extract`` and ``mea predict`` take: every container FFmpeg reads, video or
audio only, found by extension or by probing; everything else named in the summary.

The media are tiny files encoded here with PyAV (a moving gradient and a 440 Hz tone) in the
containers and codecs users have: FLV, M4V, WMV, 3GP, MPEG-TS, Ogg/WebM video, and WAV, MP3,
M4A, FLAC, Ogg, Opus, AAC audio.
"""

from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from rich.console import Console
from sampleclips import require_media, speak, talking_astronaut

from mea_cli.artifacts.features import FeatureStore
from mea_cli.extract.discover import discover, skipped_by_extension
from mea_cli.extract.driver import ExtractConfig, extract
from mea_cli.extract.media import MediaError, decode_audio, find_media, is_media, iter_frames, probe
from mea_cli.extract.report import render_report

RATE = 16000
SECONDS = 0.6

# extension -> (container format, video codec or None, audio codec or None, audio rate)
FORMATS: dict[str, tuple[str, str | None, str | None, int]] = {
    ".flv": ("flv", "flv", "libmp3lame", 22050),
    ".m4v": ("mp4", "mpeg4", "aac", 16000),
    ".wmv": ("asf", "wmv2", "wmav2", 16000),
    ".3gp": ("3gp", "h263", "aac", 16000),
    ".ts": ("mpegts", "mpeg2video", "mp2", 16000),
    ".mts": ("mpegts", "libx264", "aac", 16000),
    ".ogv": ("ogg", "libvpx", "libopus", 48000),
    ".webm": ("webm", "libvpx", "libopus", 48000),
    ".wav": ("wav", None, "pcm_s16le", 16000),
    ".mp3": ("mp3", None, "libmp3lame", 22050),
    ".m4a": ("ipod", None, "aac", 16000),
    ".flac": ("flac", None, "flac", 16000),
    ".ogg": ("ogg", None, "libopus", 48000),
    ".opus": ("opus", None, "libopus", 48000),
    ".aac": ("adts", None, "aac", 16000),
}


def encode(path: Path, fmt: str, vcodec: str | None, acodec: str | None, rate: int) -> Path:
    """``SECONDS`` of a moving gradient (176x144, 10 fps) and/or a 440 Hz tone."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format=fmt) as c:
        vs = as_ = None
        if vcodec is not None:
            vs = c.add_stream(vcodec, rate=10)
            vs.width, vs.height, vs.pix_fmt = 176, 144, "yuv420p"
        if acodec is not None:
            as_ = c.add_stream(acodec, rate=rate)
            as_.layout, as_.bit_rate = "mono", 64000  # WMA needs a bit rate
        if vs is not None:
            for i in range(int(SECONDS * 10)):
                img = np.zeros((144, 176, 3), np.uint8)
                img[..., 0] = (np.arange(176) * 2 + i * 20) % 256
                frame = av.VideoFrame.from_ndarray(img, format="rgb24")
                frame.pts, frame.time_base = i, Fraction(1, 10)
                c.mux(vs.encode(frame))
            c.mux(vs.encode(None))
        if as_ is not None:  # PyAV converts and cuts the frame into what the encoder takes
            n = int(SECONDS * rate)
            tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(n) / rate)).astype(np.float32)
            frame = av.AudioFrame.from_ndarray(tone[None, :], format="flt", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = rate, 0, Fraction(1, rate)
            c.mux(as_.encode(frame))
            c.mux(as_.encode(None))
    return path


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("media")
    for ext, (fmt, v, a, rate) in FORMATS.items():
        encode(root / f"clip_{ext[1:]}{ext}", fmt, v, a, rate)
    # media whose extension says nothing: found by probing
    encode(root / "sub" / "mystery.dat", "mp4", "mpeg4", "aac", 16000)
    encode(root / "sub" / "voice.audio", "wav", None, "pcm_s16le", 16000)
    # not media: text, random bytes, a still picture, a subtitle file, an empty file
    (root / "README.md").write_text("my clips")
    (root / "notes").write_text("no extension")
    (root / "sub" / "blob.bin").write_bytes(np.random.default_rng(0).bytes(4096))
    with av.open(str(root / "photo.png"), "w", format="image2") as c:
        s = c.add_stream("png", rate=1)
        s.width, s.height, s.pix_fmt = 32, 32, "rgb24"
        c.mux(s.encode(av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), "rgb24")))
        c.mux(s.encode(None))
    (root / "sub" / "lonely.srt").write_text("1\n00:00:00,000 --> 00:00:01,000\nhi\n")
    (root / "empty.xyz").write_bytes(b"")
    return root


def test_every_container_found_and_read(folder: Path) -> None:
    media, others = find_media(folder)
    names = sorted(p.relative_to(folder).as_posix() for p in media)
    assert names == sorted([f"clip_{e[1:]}{e}" for e in FORMATS] + ["sub/mystery.dat", "sub/voice.audio"])
    assert sorted(p.relative_to(folder).as_posix() for p in others) == [
        "README.md", "empty.xyz", "notes", "photo.png", "sub/blob.bin", "sub/lonely.srt"
    ]  # fmt: skip
    for path in media:
        info = probe(path)
        video = path.suffix in (".dat",) or FORMATS.get(path.suffix, ("", None))[1] is not None
        assert info.has_video == video and info.has_audio, path.name
        audio = decode_audio(path)
        # (AAC and MP3 add up to ~0.13 s of encoder delay and padding)
        assert abs(len(audio) / RATE - SECONDS) < 0.15, (path.name, len(audio))
        assert np.abs(audio).max() > 0.1  # the tone, not silence
        if video:
            frames = list(iter_frames(path))
            assert abs(len(frames) - SECONDS * 10) <= 1 and frames[0][1].shape == (144, 176, 3)


def test_probing_is_not_decoding(folder: Path) -> None:
    assert is_media(folder / "sub" / "mystery.dat") and is_media(folder / "sub" / "voice.audio")
    for name in ("README.md", "photo.png", "sub/blob.bin", "sub/lonely.srt", "empty.xyz"):
        assert not is_media(folder / name), name


def test_cover_art_is_not_video(tmp_path: Path) -> None:
    """An MP3 with its album picture (an ``attached_pic`` JPEG stream) is audio only."""
    path = tmp_path / "song.mp3"
    with av.open(str(path), "w", format="mp3") as c:
        audio = c.add_stream("libmp3lame", rate=22050)
        audio.layout = "mono"
        pic = c.add_stream("mjpeg")
        pic.width, pic.height, pic.pix_fmt = 64, 64, "yuvj420p"
        pic.disposition = av.stream.Disposition.attached_pic
        black = av.VideoFrame.from_ndarray(np.zeros((64, 64, 3), np.uint8), format="rgb24")
        for packet in pic.encode(black) + pic.encode(None):
            c.mux(packet)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 22050), np.float32), format="flt", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = 22050, 0, Fraction(1, 22050)
        c.mux(audio.encode(frame))
        c.mux(audio.encode(None))
    with av.open(str(path)) as c:
        assert len(c.streams.video) == 1  # the picture is there ...
    info = probe(path)
    assert info.has_audio and not info.has_video  # ... but is no video
    assert is_media(path)


def test_single_files_and_plan_names_what_is_skipped(folder: Path, tmp_path: Path) -> None:
    assert find_media(folder / "sub" / "mystery.dat") == ([folder / "sub" / "mystery.dat"], [])
    with pytest.raises(MediaError, match=r"README.md: not a video or audio file"):
        find_media(folder / "README.md")
    plan = discover(folder)
    assert plan.found == len(FORMATS) + 2
    assert plan.skipped_files == [
        "README.md", "empty.xyz", "notes", "photo.png", "sub/blob.bin", "sub/lonely.srt"
    ]  # fmt: skip
    assert skipped_by_extension(plan.skipped_files) == (
        "*.bin: sub/blob.bin; *.md: README.md; *.png: photo.png; *.srt: sub/lonely.srt; "
        "*.xyz: empty.xyz; no extension: notes"
    )
    assert discover(folder, shard="2/2").skipped_files == []  # listed by shard 1 only


@pytest.mark.slow
def test_audio_only_and_flv_become_samples_and_the_summary_names_the_rest(tmp_path: Path) -> None:
    """A WAV (speech, .txt transcript) is a sample with an empty vision sequence; an FLV with a
    face and speech is a full one; the files that are not media are named."""
    require_media()
    root = tmp_path / "in"
    clip = talking_astronaut(root / "face.mp4", "hello there", lead=0.3, tail=0.3)
    with av.open(str(clip.path)) as src, av.open(str(root / "face.flv"), "w") as dst:
        # the same clip as FLV: FLV1 video and MP3 audio, as CREMA-D ships
        encode_like(src, dst)
    clip.path.unlink()
    (root / "face.txt").write_text("hello there\n")
    voice = speak("good morning")
    encode_wav(root / "speech.wav", np.concatenate([np.zeros(4000, np.float32), voice]))
    (root / "speech.txt").write_text("good morning\n")
    (root / "cover.png").write_bytes(b"\x89PNG\r\n\x1a\n")  # a PNG's signature only
    (root / "notes.md").write_text("mine")
    out = tmp_path / "f.h5"
    report = extract(root, out, ExtractConfig(asr=False))
    assert report.videos == 2 and report.samples == 2
    assert report.skipped_files == ["cover.png", "notes.md"]
    with FeatureStore(out) as s:
        rows = {v: i for i, v in enumerate(s.samples.video)}
        assert set(rows) == {"face", "speech"}
        w, f = rows["speech"], rows["face"]
        assert s.lengths("vision")[w] == 0 and s.lengths("audio")[w] > 0
        assert [x.text for x in s.words(w)] == ["good", "morning"]
        assert s.lengths("vision")[f] > 0 and s.lengths("audio")[f] > 0
        assert [x.text for x in s.words(f)] == ["hello", "there"]
        assert {(x.video, x.stage) for x in s.failures} == {("speech", "vision")}
    buf = io.StringIO()
    render_report(report, Console(file=buf, width=200))
    text = buf.getvalue()
    assert "not media, skipped: *.md: notes.md; *.png: cover.png" in text
    assert "audio only (empty vision)" in text and "vision 1 (1 audio-only)" in text


def encode_like(src: av.container.InputContainer, dst: av.container.OutputContainer) -> None:
    """Re-encode ``src`` (video + audio) into ``dst`` (an FLV: FLV1 video, MP3 audio)."""
    vin, ain = src.streams.video[0], src.streams.audio[0]
    vout = dst.add_stream("flv", rate=int(vin.average_rate))
    vout.width, vout.height, vout.pix_fmt = vin.width, vin.height, "yuv420p"
    aout = dst.add_stream("libmp3lame", rate=22050)
    aout.layout = "mono"
    for packet in src.demux(vin, ain):
        for frame in packet.decode():
            if packet.stream is vin:
                frame.pict_type = av.video.frame.PictureType.NONE
                dst.mux(vout.encode(frame))
            else:
                frame.pts = None
                dst.mux(aout.encode(frame))
    dst.mux(vout.encode(None))
    dst.mux(aout.encode(None))


def encode_wav(path: Path, samples: np.ndarray, rate: int = RATE) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="wav") as c:
        s = c.add_stream("pcm_s16le", rate=rate)
        s.layout = "mono"
        frame = av.AudioFrame.from_ndarray(
            (np.clip(samples, -1, 1) * 32767).astype(np.int16)[None, :], format="s16", layout="mono"
        )
        frame.sample_rate = rate
        c.mux(s.encode(frame))
        c.mux(s.encode(None))
