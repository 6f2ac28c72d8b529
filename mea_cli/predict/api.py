"""``mea predict CLIP_OR_DIR_OR_STORE --ckpt CKPT``: a prediction for clips nobody labelled.

What it does, in order (docs/predict.md):

1. reads the checkpoint (a file or a run directory) and re-creates **exactly the extraction
   its features were made with**, from the provenance the checkpoint copied from its store:
   the face, audio and text backends with their recorded options and file digests, the word
   source (sidecar order, the voice-activity detector, ASR on or off and its model)
   (:meth:`mea_cli.extract.pipeline.Pipeline.from_schemas`). Anything that cannot be re-created
   -- a backend not installed here, a model or vector file that is missing or has other
   content, features imported or synthesised rather than extracted -- is refused in one line
   naming it, before any clip is touched. ``--face-model`` / ``--glove`` / ``--asr-model``
   point at a moved file; its content must be the recorded one;
2. finds the clips (one video, or a folder searched recursively, as ``mea extract`` does) and
   checks that ASR can run if the recorded extraction uses it and some clip has no transcript;
   the folder's files that are not media are named in a note (never dropped silently);
3. extracts each clip as one whole-video sample (``mea extract`` without labels), in chunks of
   ``8 * batch_size`` clips; a clip that will not open is a **failure row** in the output
   (``status: failed``, the stage and message), never dropped;
4. normalises every sequence with the checkpoint's training statistics (never refitted) and
   runs the model over length-bucketed batches (the data stage's
   :class:`~mea_cli.data.sampler.BucketBatchSampler` and :func:`~mea_cli.data.dataset.collate`:
   per-batch padding with masks, so a clip's answer does not depend on its batch);
5. reports per clip: the prediction (:mod:`mea_cli.train.predictions`), the modality weights
   psi when the model provides them (registry capability ``modality_weights``; the last
   layer's weights, and every layer's), which modalities were missing (empty sequences), the
   number of steps per modality, the words used and where they came from, and the
   extraction's failure rows for that clip (no face, no audio stream, ...).

Given a feature store (``.h5``) instead of videos, steps 1-3 are skipped: every sample is
predicted from its stored features, which must fit the checkpoint's schema
(:func:`~mea_cli.artifacts.checkpoint.check_schema`); this is how a checkpoint trained on
imported CMU features predicts.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mea_cli import MODALITIES
from mea_cli.align import align_sample, native_schema, schema_reduce
from mea_cli.artifacts.checkpoint import Checkpoint, check_schema
from mea_cli.artifacts.features import ExtractorInfo, FeatureStore, ModalitySchema, Sample
from mea_cli.data.dataset import GroupNorm, NormStats, collate, served
from mea_cli.data.sampler import BucketBatchSampler
from mea_cli.errors import MeaError
from mea_cli.extract.discover import discover, not_media_note
from mea_cli.extract.media import MEDIA_EXTENSIONS
from mea_cli.extract.pack import video_sample
from mea_cli.extract.pipeline import Pipeline
from mea_cli.models.core.registry import get_entry
from mea_cli.runtime.engine import autocast, resolve_device
from mea_cli.runtime.loading import model_from_checkpoint
from mea_cli.train.ensemble import average_predictions, names, open_members
from mea_cli.train.metrics import finite_rows
from mea_cli.train.predictions import label_range_of, readable

STORE_SUFFIXES = (".h5", ".hdf5", ".H5", ".HDF5")
CHUNK_BATCHES = 8  # clips extracted before the model runs on them: 8 batches' worth


class PredictError(MeaError):
    """A prediction request that cannot be carried out (no clip found, none predictable)."""


@dataclass
class ClipPrediction:
    """What ``mea predict`` says about one clip (``status`` ``ok`` or ``failed``)."""

    clip: str
    path: str
    status: str
    prediction: dict[str, Any] | None = None
    modality_weights: dict[str, float] | None = None
    weights_per_layer: list[dict[str, float]] | None = None
    missing: list[str] = field(default_factory=list)
    steps: dict[str, int] = field(default_factory=dict)
    duration: float | None = None
    words: list[dict[str, Any]] = field(default_factory=list)
    words_source: str = "none"
    failures: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "clip": self.clip,
            "path": self.path,
            "status": self.status,
            "prediction": self.prediction,
            "modality_weights": self.modality_weights,
            "weights_per_layer": self.weights_per_layer,
            "missing_modalities": list(self.missing),
            "steps": dict(self.steps),
            "duration_s": self.duration,
            "words_source": self.words_source,
            "words": list(self.words),
            "text": " ".join(w["text"] for w in self.words),
            "failures": list(self.failures),
        }


@dataclass
class PredictReport:
    """Every clip's answer and what made them."""

    checkpoint: str
    model: str
    dataset: str
    task: str
    label_names: list[str]
    label_range: tuple[float, float] | None
    has_weights: bool
    extraction: dict[str, str]  # modality -> backend name
    clips: list[ClipPrediction]
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    members: list[str] = field(default_factory=list)  # an ensemble's checkpoints (else empty)
    skipped_files: list[str] = field(default_factory=list)  # not media, relative to the folder

    @property
    def failed(self) -> int:
        return sum(c.status != "ok" for c in self.clips)

    def to_dict(self) -> dict[str, Any]:
        return {
            "checkpoint": self.checkpoint,
            "model": self.model,
            "dataset": self.dataset,
            "task": self.task,
            "label_names": list(self.label_names),
            "label_range": None if self.label_range is None else list(self.label_range),
            "modality_weights": self.has_weights,
            "extraction": dict(self.extraction),
            "ensemble_members": list(self.members),
            "notes": list(self.notes),
            "skipped_files": list(self.skipped_files),
            "clips": [c.to_dict() for c in self.clips],
            "predicted": len(self.clips) - self.failed,
            "failed": self.failed,
        }


def checkpoint_schemas(ckpt: Checkpoint) -> dict[str, ModalitySchema]:
    """The checkpoint's copy of its store's modality schemas (with the extraction provenance)."""
    out = {}
    for name, entry in ckpt.schema.items():
        ex = entry.get("extractor", {})
        rate = entry.get("nominal_rate_hz")
        out[name] = ModalitySchema(
            name,
            tuple(entry.get("feature_names", [])),
            ExtractorInfo(
                str(ex.get("name", "")), str(ex.get("version", "")), ex.get("parameters", {})
            ),
            float("nan") if rate is None else float(rate),
        )
    return out


def _overrides(face_model: Path | None, glove: Path | None) -> dict[str, dict[str, str]]:
    over: dict[str, dict[str, str]] = {}
    if face_model is not None:
        over["vision"] = {"model": str(Path(face_model).resolve())}
    if glove is not None:
        over["text"] = {"vectors": str(Path(glove).resolve())}
    return over


def _weights(psi: list[np.ndarray], row: int) -> tuple[dict[str, float], list[dict[str, float]]]:
    layers = [
        {m: float(v) for m, v in zip(MODALITIES, layer[row].tolist(), strict=True)} for layer in psi
    ]
    return layers[-1], layers


def predict(
    source: str | os.PathLike[str],
    ckpt_path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    batch_size: int = 16,
    device: str = "cpu",
    face_model: Path | None = None,
    glove: Path | None = None,
    asr_model: Path | None = None,
    progress: Callable[[int, int, int], None] | None = None,
) -> PredictReport:
    """Predict every clip under ``source`` with the checkpoint ``ckpt_path`` (module docstring),
    or with several as one model, their predictions averaged (:mod:`mea_cli.train.ensemble`:
    the members were trained on one store, so they share its extraction, run once).

    ``progress(done, total, failed)`` is called after every clip.
    """
    t0 = time.perf_counter()
    if batch_size < 1:
        raise PredictError("--batch-size must be at least 1")
    members = open_members(ckpt_path)
    dev = resolve_device(device)
    runners = [_runner(path, ckpt, batch_size, dev, source) for path, ckpt in members]
    run: _Runner | _Ensemble = runners[0] if len(runners) == 1 else _Ensemble(runners)
    ckpt_path, ckpt = members[0]
    schemas = checkpoint_schemas(ckpt)
    skipped: list[str] = []
    if is_store(source):
        clips, notes = _from_store(Path(source), run, progress), []
    else:
        native = {m: native_schema(x) for m, x in schemas.items()}  # before any `mea align`
        try:
            pipeline, notes = Pipeline.from_schemas(
                native, _overrides(face_model, glove), str(asr_model) if asr_model else None
            )
        except MeaError as err:  # what cannot be re-created, named with whose extraction it is
            raise PredictError(f"{ckpt_path}: {err}") from None
        clips, skipped = _from_videos(source, pipeline, run, progress, schema_reduce(schemas))
        if skipped:  # never a silent drop: named as `mea extract` names them
            notes.insert(0, not_media_note(skipped))
    checkpoint, model, member_paths = names(members)
    return PredictReport(
        checkpoint=checkpoint,
        model=model,
        dataset=ckpt.dataset,
        task=ckpt.task,
        label_names=list(ckpt.label_names),
        label_range=run.rng,
        has_weights=run.has_weights,
        extraction={m: str(schemas[m].extractor.parameters.get("backend", "")) for m in MODALITIES},
        clips=clips,
        notes=notes,
        seconds=time.perf_counter() - t0,
        members=member_paths,
        skipped_files=skipped,
    )


def _runner(
    ckpt_path: Path, ckpt: Checkpoint, batch_size: int, dev: torch.device, source: Any
) -> _Runner:
    """One checkpoint's model, its schemas and training statistics checked first."""
    missing = [m for m in MODALITIES if m not in ckpt.schema]
    if missing:
        raise PredictError(f"{ckpt_path}: the checkpoint records no {', '.join(missing)} schema")
    stats = NormStats.from_dict(ckpt.norm)
    for m, schema in checkpoint_schemas(ckpt).items():
        if m not in stats.mean or stats.mean[m].shape != (schema.dim,):
            raise PredictError(f"{ckpt_path}: normalisation statistics do not fit the {m} schema")
    if stats.mode == "group" and not is_store(source):
        raise PredictError(
            f"{ckpt_path}: this model standardises each speaker/group with its own statistics "
            f"(train.normalise=group), which clips without a group cannot have; predict from a "
            f"feature store extracted with a labels file that has the group column"
        )
    return _Runner(ckpt, ckpt_path, stats, batch_size, dev)


def is_store(source: str | os.PathLike[str]) -> bool:
    """A feature store (``.h5`` / ``.hdf5`` file) rather than a video or a folder."""
    p = Path(source)
    return p.is_file() and p.suffix in STORE_SUFFIXES


class _Runner:
    """The checkpoint's model and what reading its output needs."""

    def __init__(
        self, ckpt: Checkpoint, path: Path, stats: NormStats, batch_size: int, dev: torch.device
    ) -> None:
        self.ckpt, self.path, self.stats = ckpt, path, stats
        self.groups: GroupNorm | None = None  # train.normalise=group: the store's, set by it
        self.batch_size, self.dev = batch_size, dev
        self.model = model_from_checkpoint(ckpt, path).to(dev).eval()
        entry = get_entry(ckpt.model)
        self.has_weights = "modality_weights" in entry.active_capabilities(self.model.cfg)
        self.gap_masks = entry.reads_gap_masks  # aligned clips: unobserved words
        self.rng = label_range_of(ckpt.task, ckpt.dataset, ckpt.label_range)

    def check_store(self, store: FeatureStore) -> None:
        """``store``'s schema against the checkpoint's: its features only, as its labels are
        never read (a store of another task predicts with the model's)."""
        check_schema(self.ckpt, store, self.path, labels=False)

    def fit_groups(self, store: FeatureStore) -> None:
        """Under ``train.normalise=group``: each of ``store``'s groups its own statistics
        (after the store's values were checked: they go into them)."""
        if self.stats.mode == "group":
            self.groups = GroupNorm.fit(store, self.stats)

    def forward(self, ready: list[tuple[ClipPrediction, Sample]]) -> tuple[np.ndarray, list[np.ndarray]]:
        """Normalise with the training statistics, bucket by length, batch, run the model:
        the predictions of ``ready`` in its order, and psi per layer (``[N, 3]`` each; none
        when the model has no modality weights)."""
        items = []
        for k, (clip, s) in enumerate(ready):
            feats, summary = served(s, self.stats, self.groups)
            items.append({
                "id": clip.clip, "index": k, "features": feats, "label": None,
                "observed": s.observed if self.gap_masks else {}, "summary": summary,
            })  # fmt: skip
        lengths = [sum(len(it["features"][m]) for m in MODALITIES) for it in items]
        pred: np.ndarray | None = None
        psi: list[np.ndarray] = []
        for idx in BucketBatchSampler(lengths, self.batch_size, shuffle=False):
            batch = collate([items[i] for i in idx]).to(self.dev)
            with torch.no_grad(), autocast(self.dev):
                out = self.model(batch)
            p = out.pred.float().cpu().numpy()
            if pred is None:
                pred = np.zeros((len(items), *p.shape[1:]), np.float32)
            pred[idx] = p
            if self.has_weights:
                if not psi:
                    psi = [np.zeros((len(items), len(MODALITIES)), np.float32) for _ in out.psi]
                for layer, w in zip(psi, out.psi, strict=True):
                    layer[idx] = w.float().cpu().numpy()
        assert pred is not None  # ready is never empty
        return pred, psi

    def __call__(self, ready: list[tuple[ClipPrediction, Sample]]) -> None:
        """Fill in each clip's answer."""
        if ready:
            fill(ready, *self.forward(ready), self.ckpt.task, self.ckpt.label_names, self.rng)


class _Ensemble:
    """Several checkpoints' models as one: each reads the clips with its own training
    statistics, their predictions are averaged (:func:`~mea_cli.train.ensemble.average_predictions`)
    and so are their modality weights psi, when every member has them, layer by layer."""

    def __init__(self, members: list[_Runner]) -> None:
        self.members = members
        first = members[0]
        self.batch_size, self.rng = first.batch_size, first.rng
        self.has_weights = all(m.has_weights for m in members)

    def check_store(self, store: FeatureStore) -> None:
        for m in self.members:
            m.check_store(store)

    def fit_groups(self, store: FeatureStore) -> None:
        for m in self.members:
            m.fit_groups(store)

    def __call__(self, ready: list[tuple[ClipPrediction, Sample]]) -> None:
        if not ready:
            return
        outs = [m.forward(ready) for m in self.members]
        first = self.members[0].ckpt
        pred = average_predictions(first.task, [p for p, _ in outs])
        depths = {len(psi) for _, psi in outs}
        if len(depths) > 1:  # members with other numbers of WAL layers: no one psi to report
            self.has_weights = False
        psi = (
            [np.mean([o[1][k] for o in outs], axis=0) for k in range(depths.pop())]
            if self.has_weights
            else []
        )
        fill(ready, pred, psi, first.task, first.label_names, self.rng)


def fill(
    ready: list[tuple[ClipPrediction, Sample]],
    pred: np.ndarray,
    psi: list[np.ndarray],
    task: str,
    names: Sequence[str],
    rng: tuple[float, float] | None,
) -> None:
    """Each clip's prediction in words and numbers (:func:`~mea_cli.train.predictions.readable`)
    and, with ``psi``, its modality weights (the last layer's, and every layer's). A clip whose
    model output is NaN or infinite is a failure row (stage ``model``), not a number."""
    finite = finite_rows(pred)
    said = iter(readable(task, pred[finite], names, rng) if finite.any() else [])
    for row, (clip, _) in enumerate(ready):
        if not finite[row]:
            clip.status = "failed"
            clip.failures.append(
                {"stage": "model", "message": f"clip {clip.clip}: the model's output is NaN or infinite"}
            )
            continue
        clip.prediction = next(said)
        if psi:
            clip.modality_weights, clip.weights_per_layer = _weights(psi, row)


def _describe(clip: ClipPrediction, sample: Sample) -> None:
    """Fill in what the input was: steps, missing modalities, words."""
    clip.steps = {m: len(sample.features[m]) for m in MODALITIES}
    clip.missing = [m for m in MODALITIES if not clip.steps[m]]
    clip.words = [{"text": w.text, "start": w.start, "end": w.end} for w in sample.words]
    clip.words_source = sample.words_source or "none"


def _from_videos(
    source: str | os.PathLike[str],
    pipeline: Pipeline,
    run: _Runner | _Ensemble,
    progress: Callable[[int, int, int], None] | None,
    align: str | None = None,
) -> tuple[list[ClipPrediction], list[str]]:
    """Extract each video as one whole-video sample, then predict, chunk by chunk; with
    ``align`` (a checkpoint trained on a ``mea align`` store) each sample is first collapsed
    onto its words with that reduction, as ``mea align`` did (a clip without words fails).
    Also returns the files of the folder that are not media (skipped, for the report)."""
    plan = discover(source)
    if not plan.videos:
        raise PredictError(
            f"{source}: no video or audio file found (looked for {_extensions()}, and any other "
            "file FFmpeg reads as audio or video)"
        )
    pipeline.words.require_asr(plan.without_sidecar())
    clips: list[ClipPrediction] = []
    total, failed = len(plan.videos), 0
    chunk = CHUNK_BATCHES * run.batch_size
    for start in range(0, total, chunk):
        ready: list[tuple[ClipPrediction, Sample]] = []
        for key, path in plan.videos[start : start + chunk]:
            res = pipeline.extract_video(key, path)
            clip = ClipPrediction(
                key,
                str(path),
                "failed" if res.fatal else "ok",
                failures=[{"stage": s, "message": msg} for s, msg in res.failures],
            )
            clips.append(clip)
            sample = None if res.fatal else video_sample(key, res)
            if sample is not None and align is not None:
                try:
                    sample = align_sample(sample, align)[0]
                except ValueError as err:
                    clip.status, sample = "failed", None
                    clip.failures.append({"stage": "align", "message": f"clip {key}: {err}"})
            if sample is None:
                failed += 1
            else:
                clip.duration = res.duration if math.isfinite(res.duration) else None
                _describe(clip, sample)
                ready.append((clip, sample))
            if progress is not None:
                progress(len(clips), total, failed)
        run(ready)
    return clips, plan.skipped_files


def _from_store(
    path: Path, run: _Runner | _Ensemble, progress: Callable[[int, int, int], None] | None
) -> list[ClipPrediction]:
    """Every sample of a feature store (any split, labels ignored), no extraction: its
    features must have the checkpoint's schema (:func:`~mea_cli.artifacts.checkpoint.check_schema`)."""
    clips: list[ClipPrediction] = []
    with FeatureStore(path) as store:
        run.check_store(store)
        store.check_values()
        total = len(store)
        if not total:
            raise PredictError(f"{path}: the feature store holds no sample")
        run.fit_groups(store)  # train.normalise=group: each group of this store, its own
        chunk = CHUNK_BATCHES * run.batch_size
        for start in range(0, total, chunk):
            ready = []
            for i in range(start, min(total, start + chunk)):
                sample = store[i]
                clip = ClipPrediction(sample.id, f"{path}#{sample.id}", "ok")
                span = sample.end - sample.start
                clip.duration = float(span) if math.isfinite(span) else None
                _describe(clip, sample)
                clips.append(clip)
                ready.append((clip, sample))
                if progress is not None:
                    progress(len(clips), total, 0)
            run(ready)
    return clips


def _extensions() -> str:
    return ", ".join(sorted(e.lstrip(".") for e in MEDIA_EXTENSIONS))
