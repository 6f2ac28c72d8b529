"""What an import did (:class:`ImportReport`): counts, drops with their reasons, notes;
printed by the CLI and stored as JSON in the store's attributes."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from mea_cli import MODALITIES
from mea_cli.data.importers.cleaning import fix_nonfinite
from mea_cli.data.importers.errors import ImportFormatError

# What to check when most samples were dropped for a reason (the error of an empty split).
DROP_HINTS = {
    "video is in no fold": "do the folds fit these files? --dataset picks the standard folds, "
    "--folds FILE.json others",
}


@dataclass
class ImportReport:
    """What an import did; printed by the CLI and stored (as JSON) in the store's attributes."""

    format: str
    source: str
    dataset: str
    task: str
    label_names: tuple[str, ...]
    splits: dict[str, int] = field(default_factory=dict)
    modalities: dict[str, dict[str, Any]] = field(default_factory=dict)
    dropped_rows: list[tuple[str, str]] = field(default_factory=list, repr=False)
    """Every dropped sample as ``(id, reason)``: the store's ``/failures`` rows (stage ``import``)."""
    notes: list[str] = field(default_factory=list)
    kept_lengths: dict[str, list[int]] = field(default_factory=dict, repr=False)
    """Lengths of the kept sequences per modality, while samples stream (not reported as is)."""
    stepless: list[str] = field(default_factory=list, repr=False)
    """Kept samples with no step in any modality (noted by :meth:`finish`)."""

    def keep(self, modality: str, x: np.ndarray) -> np.ndarray:
        """``x`` with non-finite values mapped to 0 (counted under ``nonfinite_fixed``), its
        length noted for :meth:`finish_lengths`."""
        x, fixed = fix_nonfinite(x)
        self.modalities[modality]["nonfinite_fixed"] += fixed
        self.kept_lengths.setdefault(modality, []).append(len(x))
        return x

    def finish_lengths(self) -> None:
        """The length statistics of every modality from the sequences kept so far."""
        for m in MODALITIES:
            self.add_lengths(m, self.kept_lengths.get(m, []))

    def count(self, sample: str, split: str, features: Mapping[str, np.ndarray]) -> None:
        """Count a kept sample in ``split``; one with no step in any modality is remembered
        for a note (it is kept: the source's split holds it)."""
        self.splits[split] += 1
        if not any(len(x) for x in features.values()):
            self.stepless.append(sample)

    def finish(self, path: Path) -> None:
        """After the last sample: the note on samples with no step, and the refusal of an
        import that kept no train or no valid sample (``path``: the source the error names),
        naming what dropped most; a missing test split is only noted."""
        if self.stepless:
            ex = ", ".join(self.stepless[:5])
            self.notes.append(
                f"{len(self.stepless)} sample(s) have no step in any modality (e.g. {ex}); kept, "
                "as the source's split holds them (a model sees no input for them)"
            )
        empty = [s for s in ("train", "valid") if not self.splits.get(s)]
        if empty:
            why = "the source holds none"
            if self.dropped_rows:
                reason, count = self.dropped.most_common(1)[0]
                total = self.samples + len(self.dropped_rows)
                why = f"{len(self.dropped_rows)} of {total} samples dropped, {count}: {reason}"
                if reason in DROP_HINTS:
                    why += f"; {DROP_HINTS[reason]}"
            raise ImportFormatError(
                path,
                f"no sample would be imported into {' and '.join(empty)} ({why}); "
                "a store needs train and valid samples",
            )
        if not self.splits.get("test"):
            self.notes.append("no test sample was imported: the store has nothing to test on")

    def drop(self, sample: str, reason: str) -> None:
        """Record ``sample`` as dropped for ``reason`` (a failure row of the store)."""
        self.dropped_rows.append((sample, reason))

    @property
    def dropped(self) -> Counter[str]:
        """How many samples were dropped for each reason (in the order first seen)."""
        return Counter(reason for _, reason in self.dropped_rows)

    @property
    def dropped_examples(self) -> dict[str, list[str]]:
        """Up to 5 dropped sample ids per reason, for the report."""
        out: dict[str, list[str]] = {}
        for sample, reason in self.dropped_rows:
            examples = out.setdefault(reason, [])
            if len(examples) < 5:
                examples.append(sample)
        return out

    def add_lengths(self, modality: str, lengths: Iterable[int]) -> None:
        lens = np.asarray(list(lengths), np.int64)
        entry = self.modalities.setdefault(modality, {})
        entry.update(
            steps=int(lens.sum()),
            length_min=int(lens.min()) if len(lens) else 0,
            length_median=float(np.median(lens)) if len(lens) else 0.0,
            length_max=int(lens.max()) if len(lens) else 0,
            empty_sequences=int((lens == 0).sum()),
        )

    @property
    def samples(self) -> int:
        return sum(self.splits.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "source": self.source,
            "dataset": self.dataset,
            "task": self.task,
            "label_names": list(self.label_names),
            "samples": self.samples,
            "splits": dict(self.splits),
            "modalities": self.modalities,
            "dropped": dict(self.dropped),
            "dropped_examples": self.dropped_examples,
            "notes": list(self.notes),
        }

    def render(self, console: Console) -> None:
        console.print(
            f"imported {self.samples} samples from {self.format} file "
            f"{self.source} as {self.dataset or 'unnamed dataset'} ({self.task}: "
            f"{', '.join(self.label_names)})",
            highlight=False,
        )
        console.print(
            "splits: " + ", ".join(f"{k} {v}" for k, v in self.splits.items()), highlight=False
        )
        table = Table(
            "modality", "D", "padding", "length min/median/max", "empty", "non-finite -> 0"
        )
        for m, e in self.modalities.items():
            table.add_row(
                m,
                str(e.get("dim", "")),
                str(e.get("padding", "")),
                f"{e.get('length_min', 0)} / {e.get('length_median', 0):g} / {e.get('length_max', 0)}",
                str(e.get("empty_sequences", 0)),
                str(e.get("nonfinite_fixed", 0)),
            )
        console.print(table)
        if self.dropped_rows:
            examples = self.dropped_examples
            for reason, count in self.dropped.items():
                ex = ", ".join(examples[reason])
                console.print(
                    f"dropped {count} samples: {reason} (e.g. {ex}; all are failure rows of "
                    "the store)",
                    highlight=False,
                )
        else:
            console.print("dropped 0 samples", highlight=False)
        for note in self.notes:
            console.print(f"note: {note}", highlight=False)
