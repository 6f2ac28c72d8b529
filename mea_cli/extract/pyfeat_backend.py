"""Opt-in face backend: py-feat's ``Detectorv1`` FACS action-unit intensities.

``mea extract --face-backend pyfeat --face-opt weights=DIR`` runs py-feat (``pip install
'mea-cli[pyfeat]'``; it needs torchvision and xgboost) with ``face_model="img2pose"`` (face
boxes and head pose), ``landmark_model="mobilefacenet"`` and ``au_model="xgb"``; emotion,
identity and gaze models are off. py-feat fetches its weights from the Hugging Face hub into
its package folder on first use, which does not work offline, so ``DIR`` must be a hub-style
cache holding these files (fill it on a connected machine with ``huggingface-cli download
py-feat/<repo> <file> --cache-dir DIR``, or copy ``feat/resources`` from an install that has
run once):

=====================  ===========================================
repository             file
=====================  ===========================================
``py-feat/img2pose``   ``config.json``, ``model.safetensors``
``py-feat/mobilefacenet``  ``mobilefacenet_model_best.pth.tar``
``py-feat/xgb_au``     ``xgb_au_classifier_v2.skops``
=====================  ===========================================

Features per frame with a face (the most confident one): py-feat's AU columns (``AU01`` ...
``AU43``, intensities in [0, 1]) then ``Pitch``, ``Roll``, ``Yaw`` in degrees.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from mea_cli.artifacts.features import ExtractorInfo
from mea_cli.extract.backends import Option, options_record, parse_path
from mea_cli.extract.face import FRAME_OPTIONS, FaceModelError, pack_steps, rotation_record
from mea_cli.extract.media import MediaError
from mea_cli.extract.usercache import cached_sha256

PYFEAT_WEIGHT_FILES: dict[str, tuple[str, ...]] = {
    "py-feat/img2pose": ("config.json", "model.safetensors"),
    "py-feat/mobilefacenet": ("mobilefacenet_model_best.pth.tar",),
    "py-feat/xgb_au": ("xgb_au_classifier_v2.skops",),
}
POSE_COLUMNS: tuple[str, ...] = ("Pitch", "Roll", "Yaw")
BATCH = 16


def missing_weights(weights_dir: str | os.PathLike[str]) -> list[str]:
    """``repo/file`` entries absent from a hub-style cache folder (empty list: all there)."""
    root = Path(weights_dir)
    missing = []
    for repo, files in PYFEAT_WEIGHT_FILES.items():
        snap = root / f"models--{repo.replace('/', '--')}" / "snapshots"
        for name in files:
            if not any(snap.glob(f"*/{name}")):
                missing.append(f"{repo}/{name}")
    return missing


class PyFeatBackend:
    """py-feat AU intensities per frame (see module docstring for the weight files).

    Options: ``weights`` (the folder, required) and the frame options ``fps``, ``max_side``,
    ``display_rotation``.
    """

    kind = "face"
    name = "pyfeat"
    tool = "py-feat-detectorv1-au"
    OPTIONS: dict[str, Option] = {
        "weights": Option(None, parse_path, "folder of py-feat weight files (hub cache layout)"),
        **FRAME_OPTIONS,
    }

    def __init__(
        self,
        weights: str | os.PathLike[str] | None = None,
        fps: float | None = None,
        max_side: int = 0,
        display_rotation: bool = True,
    ) -> None:
        if not weights:
            raise FaceModelError("face backend pyfeat needs --face-opt weights=DIR")
        root = Path(weights)
        if not root.is_dir():
            raise FaceModelError(f"{root}: py-feat weights folder not found (--face-opt weights)")
        missing = missing_weights(root)
        if missing:
            raise FaceModelError(
                f"{root}: py-feat weight files missing: {', '.join(missing)} "
                "(see docs/extraction.md, 'py-feat weights')"
            )
        self.weights = root.resolve()
        self.fps = fps
        self.max_side = int(max_side)
        self.display_rotation = bool(display_rotation)
        rotation_record(self.display_rotation)  # a PyAV that cannot turn frames: refused now
        self.nominal_rate_hz = float(fps) if fps else float("nan")
        os.environ["HF_HUB_OFFLINE"] = "1"  # never reach for the hub
        try:
            import feat
            import feat.detector as feat_detector
            import feat.pretrained as feat_pretrained
        except ImportError as err:
            raise FaceModelError(
                f"face backend pyfeat needs py-feat (pip install 'mea-cli[pyfeat]'): {err}"
            ) from None
        # py-feat passes cache_dir=get_resource_path() to every hub download: point it at DIR.
        for mod in (feat_detector, feat_pretrained):
            if hasattr(mod, "get_resource_path"):
                mod.get_resource_path = lambda: str(root)
        self.version = str(feat.__version__)
        self._detector = feat.Detectorv1(
            face_model="img2pose",
            landmark_model="mobilefacenet",
            au_model="xgb",
            emotion_model=None,
            identity_model=None,
            gaze_model=None,
            device="cpu",
        )
        self.au_names: tuple[str, ...] = tuple(feat_pretrained.AU_LANDMARK_MAP["Feat"])
        self.feature_names: tuple[str, ...] = self.au_names + POSE_COLUMNS

    def provenance(self) -> ExtractorInfo:
        digests = {}
        for repo, files in PYFEAT_WEIGHT_FILES.items():
            snap = self.weights / f"models--{repo.replace('/', '--')}" / "snapshots"
            for name in files:
                digests[f"{repo}/{name}"] = cached_sha256(sorted(snap.glob(f"*/{name}"))[0])
        return ExtractorInfo(
            self.tool,
            self.version,
            {
                "backend": self.name,
                "options": options_record(
                    {
                        "weights": str(self.weights),
                        "fps": self.fps,
                        "max_side": self.max_side,
                        "display_rotation": self.display_rotation,
                    }
                ),
                "face_model": "img2pose",
                "landmark_model": "mobilefacenet",
                "au_model": "xgb",
                "weights_sha256": digests,
                "fps": self.fps or "native",
                "max_side": self.max_side,
                **rotation_record(self.display_rotation),
                "features": "FACS AU intensities + head pitch/roll/yaw (degrees)",
            },
        )

    def _run(self, frames: list[np.ndarray]) -> list[np.ndarray | None]:
        import torch

        batch = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).contiguous()
        fex = self._detector.detect(
            batch, data_type="tensor", batch_size=len(frames), progress_bar=False
        )
        out: list[np.ndarray | None] = [None] * len(frames)
        if len(fex) == 0:
            return out
        fex = fex.sort_values("FaceScore", ascending=False).drop_duplicates("frame")
        for _, row in fex.iterrows():
            k = int(row["frame"])
            vals = row[list(self.feature_names)].to_numpy(np.float32)
            if 0 <= k < len(frames) and np.isfinite(vals[: len(self.au_names)]).all():
                out[k] = vals
        return out

    def extract(
        self, frames: Iterable[tuple[float, np.ndarray]], frame_period: float
    ) -> tuple[np.ndarray, np.ndarray, int]:
        """Same contract as :meth:`mea_cli.extract.face.BlendshapeBackend.extract`."""
        rows: list[np.ndarray] = []
        times: list[tuple[float, float]] = []
        buf: list[tuple[float, np.ndarray]] = []
        seen = 0

        def flush() -> None:
            if not buf:
                return
            shape = buf[0][1].shape
            same = [b for b in buf if b[1].shape == shape]
            for (t, _), vals in zip(same, self._run([b[1] for b in same]), strict=True):
                if vals is not None:
                    rows.append(vals)
                    times.append((t, t + frame_period))
            buf.clear()

        dim = len(self.feature_names)
        try:
            for t, img in frames:
                seen += 1
                buf.append((t, img))
                if len(buf) == BATCH:
                    flush()
            flush()
        except MediaError as err:
            flush()
            err.partial = (*pack_steps(rows, times, dim), seen)
            raise
        return (*pack_steps(rows, times, dim), seen)

