"""``mea viz CKPT --what tsne|wal|attention|curves``: one PNG (plus its numbers) per request.

A request for several pictures draws every one it can; those it cannot (a model without the
capability, a missing log, a sample not in the split) are listed in one :class:`VizRefused`
error raised after the others are written, so the command exits non-zero naming each refusal.

Besides each PNG we write the numbers it shows (``tsne.npz`` with the exact t-SNE input and
coordinates, ``wal.json`` with psi per sample and layer, ``attention.npz`` with the cropped maps)
so a picture can always be checked against data, and the tests do.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mea_cli.data.splits import check_split_name
from mea_cli.errors import MeaError
from mea_cli.paths import write_json
from mea_cli.viz.figures import VizError, save_npz

WHATS: tuple[str, ...] = ("tsne", "wal", "attention", "curves")
NEEDS: dict[str, str] = {
    "tsne": "representations",
    "wal": "modality_weights",
    "attention": "attention_maps",
}
"""The model capability (``mea_cli.models.core.contract.CAPABILITIES``) each picture needs."""


@dataclass
class VizOutput:
    """One picture: its PNG, the side file with its numbers, and a one-line summary."""

    what: str
    png: Path
    data: Path | None
    summary: str
    numbers: dict[str, Any] = field(default_factory=dict)


def _tag(loaded: Any) -> str:
    return f"{loaded.ckpt.model} on {loaded.ckpt.dataset}{' (synthetic data)' if loaded.synthetic else ''}, {loaded.split} split"


def make(
    ckpt: Path,
    whats: Sequence[str],
    out_dir: Path | None = None,
    features: Path | None = None,
    split: str = "test",
    sample: str | None = None,
    samples: int = 2,
    seed: int = 0,
    max_points: int = 200,
) -> list[VizOutput]:
    """Draw each requested picture into ``out_dir`` (default: ``<ckpt dir>/viz``)."""
    ckpt = Path(ckpt)
    bad = [w for w in whats if w not in WHATS]
    if bad:
        raise VizError(f"unknown picture {', '.join(bad)}; choose from {', '.join(WHATS)}")
    if not whats:
        raise VizError(f"nothing to draw: give --what {'|'.join(WHATS)}")
    check_split_name(split)  # as `mea eval` checks it, before any picture
    out_dir = Path(out_dir) if out_dir is not None else ckpt.parent / "viz"
    outputs: list[VizOutput] = []
    refused: dict[str, MeaError] = {}
    if "curves" in whats:
        _attempt("curves", lambda: _curves(ckpt, out_dir), outputs, refused)
    model_whats = [w for w in whats if w != "curves"]
    if model_whats:
        _model_pictures(ckpt, model_whats, out_dir, features, split, sample, samples, seed,
                        max_points, outputs, refused)  # fmt: skip
    if len(refused) == 1 and not outputs:  # one picture asked and refused: its own error
        raise next(iter(refused.values()))
    if refused:
        raise VizRefused(outputs, refused)
    return outputs


class VizRefused(VizError):
    """Some of the requested pictures could not be drawn; ``outputs`` holds those that were
    (already written), ``refused`` the reason of each that was not. The message is one line."""

    def __init__(self, outputs: list[VizOutput], refused: dict[str, MeaError]) -> None:
        self.outputs, self.refused = outputs, dict(refused)
        drawn = f"drew {', '.join(o.what for o in outputs)}; " if outputs else ""
        reasons = "; ".join(f"{w}: {why}" for w, why in refused.items())
        super().__init__(f"{drawn}refused {', '.join(refused)} - {reasons}")


def _attempt(
    what: str,
    draw: Callable[[], VizOutput],
    outputs: list[VizOutput],
    refused: dict[str, MeaError],
) -> None:
    """Draw one picture; a :class:`VizError` / :class:`MeaError` refuses it, the rest go on."""
    try:
        outputs.append(draw())
    except MeaError as err:
        refused[what] = err


def _model_pictures(
    ckpt: Path,
    whats: Sequence[str],
    out_dir: Path,
    features: Path | None,
    split: str,
    sample: str | None,
    samples: int,
    seed: int,
    max_points: int,
    outputs: list[VizOutput],
    refused: dict[str, MeaError],
) -> None:
    """The pictures that need the model run on a split; a checkpoint or store that cannot be
    loaded refuses them all."""
    # only the asked picture's code (and matplotlib / scikit-learn) loads
    from mea_cli.viz.collect import attention_of, collect, load

    try:
        loaded, store = load(ckpt, features, split)
    except MeaError as err:
        refused.update({w: err for w in whats})
        return
    try:
        able = []
        for w in whats:
            try:
                _check_capabilities(loaded, [w])
                able.append(w)
            except MeaError as err:
                refused[w] = err
        got = None
        if {"tsne", "wal"} & set(able):
            try:
                got = collect(loaded)
            except MeaError as err:
                refused.update({w: err for w in ("tsne", "wal") if w in able})
                able = [w for w in able if w not in refused]
        for w in able:
            if w == "tsne":
                _attempt(w, lambda: _tsne(loaded, got, out_dir, seed, max_points), outputs, refused)
            elif w == "wal":
                _attempt(
                    w, lambda: _wal(loaded, got, out_dir, sample, samples, seed), outputs, refused
                )
            elif w == "attention":
                _attempt(
                    w,
                    lambda: _attention(loaded, attention_of(loaded, sample), out_dir),
                    outputs,
                    refused,
                )
    finally:
        store.close()


def _check_capabilities(loaded: Any, whats: Sequence[str]) -> None:
    """Ask the registry whether the checkpoint's model gives what each picture needs; refuse
    in one line naming the model and what it lacks."""
    # only the asked picture's code (and matplotlib / scikit-learn) loads
    from mea_cli.models.core.registry import config_from_dict, get_entry

    entry = get_entry(loaded.ckpt.model)
    cfg = config_from_dict(loaded.ckpt.model, loaded.ckpt.model_config)
    for w in whats:
        entry.require(NEEDS[w], cfg, f"mea viz --what {w}")


def _curves(ckpt: Path, out_dir: Path) -> VizOutput:
    # only the asked picture's code (and matplotlib / scikit-learn) loads
    from mea_cli.artifacts.checkpoint import load_checkpoint
    from mea_cli.viz.curves import plot_curves, read_chosen, read_curves

    model = load_checkpoint(ckpt).model  # the checkpoint given is checked, as for the others
    log = ckpt.parent / "log.jsonl"
    if not log.is_file():
        raise VizError(
            f"{ckpt.absolute().parent}: no training log (log.jsonl) in the folder of "
            f"{ckpt.name}; the curves are drawn from a run folder's log"
        )
    curves = read_curves(log)
    closed = _closed_form(model)  # its "epochs" are the values of C it tried
    png = plot_curves(
        curves, out_dir / "curves.png",
        title=f"{'validation of each C' if closed else 'training curves'} ({log})",
        chosen=read_chosen(log), closed_form=closed,
    )  # fmt: skip
    epochs = max(len(v) for v in curves.values())
    over = f"{epochs} values of C (closed-form fits)" if closed else f"{epochs} epochs"
    return VizOutput(
        "curves",
        png,
        log,
        f"{len(curves)} curves over {over} from {log}",
        {"curves": sorted(curves), "epochs": epochs, "closed_form": closed},
    )


def _closed_form(model: str) -> bool:
    """Whether ``model`` is fitted in closed form (capability ``closed_form_fit``); a model
    that is not registered here counts as trained by epochs (its log is all there is)."""
    # start-up time: the registry (and torch) loads only when curves are asked for
    from mea_cli.models.core.registry import get_entry

    try:
        return "closed_form_fit" in get_entry(model).capabilities
    except MeaError:
        return False


def check_not_multi_run(path: Path) -> None:
    """Refuse a folder of several runs (``mea compare``, ``mea train --folds``) given as the
    checkpoint, naming the run folders to give instead (as a run of several seeds does)."""
    path = Path(path)
    if not path.is_dir() or (path / "ckpt.pt").exists():
        return
    if (path / "folds.json").is_file():
        try:
            fmt = json.loads((path / "folds.json").read_text()).get("format")
        except (OSError, ValueError, AttributeError):
            fmt = None
        folds = sorted(
            (d for d in path.glob("folds/*") if d.is_dir() and d.name.isdigit()),
            key=lambda d: int(d.name),
        )
        if fmt == "mea-compare-folds":
            runs_in = [r for d in folds for r in _model_seed_runs(d)]
            what = "a cross-validated comparison keeps one run per fold, model and seed"
        else:
            runs_in = folds
            what = "a cross-validated training keeps one run per fold"
    elif (path / "compare.json").is_file():
        runs_in = _model_seed_runs(path)
        what = "a comparison keeps one run per model and seed"
    else:
        return
    shown = ", ".join(str(d) for d in runs_in[:6]) + (", ..." if len(runs_in) > 6 else "")
    raise VizError(f"{path}: {what}, none at the top; give one of them: {shown or 'none yet'}")


def _model_seed_runs(folder: Path) -> list[Path]:
    """The ``<model>/<seed>/`` run folders of a comparison folder that hold a checkpoint."""
    return sorted(p.parent for p in folder.glob("*/*/ckpt.pt") if p.parent.name.isdigit())


def _tsne(loaded: Any, got: Any, out_dir: Path, seed: int, max_points: int) -> VizOutput:
    # only the asked picture's code (and matplotlib / scikit-learn) loads
    from mea_cli.viz.tsne import counts, tsne_figure

    exc, agn = got.reps.get("exclusive", {}), got.reps.get("agnostic", {})
    png = out_dir / "tsne.png"
    inputs, _ = tsne_figure(
        exc,
        agn,
        png,
        seed=seed,
        max_samples=max_points,
        title=f"t-SNE of $h^e_m$ / $h^a_m$ - {_tag(loaded)}",
        sample_ids=got.ids,
    )
    c = counts(inputs)
    return VizOutput(
        "tsne",
        png,
        png.with_suffix(".npz"),
        f"{inputs.vectors.shape[0]} vectors ({', '.join(f'{k}: {v}' for k, v in c.items())})",
        {"counts": c, "dim": int(inputs.vectors.shape[1])},
    )


def _wal(
    loaded: Any, got: Any, out_dir: Path, sample: str | None, samples: int, seed: int
) -> VizOutput:
    # only the asked picture's code (and matplotlib / scikit-learn) loads
    from mea_cli.viz.wal import MODALITY_ORDER, plot_psi, psi_array

    psi = psi_array(got.psi)  # [N, L, 3], checked to sum to one
    if sample is not None:
        if sample not in got.ids:
            raise VizError(
                f"no sample {sample!r} in the {loaded.split} split of {loaded.store_name}"
            )
        pick = [got.ids.index(sample)]
    else:
        rng = np.random.default_rng(seed)
        pick = sorted(
            rng.choice(len(got.ids), size=min(samples, len(got.ids)), replace=False).tolist()
        )
    ids = [got.ids[i] for i in pick]
    png = plot_psi(
        psi[pick], ids, out_dir / "wal.png", title=f"WAL weights $\\psi_m$ - {_tag(loaded)}"
    )
    numbers = {
        "modalities": list(MODALITY_ORDER),
        "samples": {sid: psi[i].tolist() for sid, i in zip(ids, pick, strict=True)},
        "split_mean": psi.mean(axis=0).tolist(),
        "max_abs_sum_error": float(np.abs(psi.sum(-1) - 1).max()),
    }
    data = write_json(out_dir / "wal.json", numbers, "picture data")
    mean_last = dict(zip(MODALITY_ORDER, np.round(psi[:, -1].mean(0), 3).tolist(), strict=True))
    return VizOutput(
        "wal",
        png,
        data,
        f"psi of {len(ids)} samples x {psi.shape[1]} layers; split mean (last layer) {mean_last}",
        numbers,
    )


def _attention(loaded: Any, found: tuple[str, dict, dict, str], out_dir: Path) -> VizOutput:
    # only the asked picture's code (and matplotlib / scikit-learn) loads
    from mea_cli.viz.attention import plot_attention, sample_maps

    sid, maps, lengths, block = found
    cropped = sample_maps(maps, lengths, index=0)
    png = plot_attention(
        cropped,
        out_dir / "attention.png",
        title=f"self-attention maps of {sid} - {_tag(loaded)}",
        block=block.upper(),
    )
    data = save_npz(
        out_dir / "attention.npz",
        **{f"{m}_layer{i + 1}": a for m, v in cropped.items() for i, a in enumerate(v)},
    )
    shapes = {m: list(v[0].shape) for m, v in cropped.items()}
    return VizOutput(
        "attention",
        png,
        data,
        f"sample {sid}: {len(next(iter(cropped.values())))} {block.upper()} attention layers, "
        f"maps {shapes}",
        {"sample": sid, "lengths": lengths},
    )
