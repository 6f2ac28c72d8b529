"""A real-corpus benchmark: Emo-DB's emotion classes, speaker-independent, three models.

``make bench-real DATA=path/to/wav`` (or ``.venv/bin/python benchmarks/bench_real_corpus.py DATA``)
on a folder laid out as the Berlin emotional speech database (Emo-DB) is released: one wav per
utterance named ``03a01Fa.wav`` (speaker ``03``, text ``a01``, emotion letter ``F``, version
``a``); the letters are German: W anger (Wut), L boredom (Langeweile), E disgust (Ekel),
A fear (Angst), F happiness (Freude), T sadness (Trauer), N neutral.

The split is fixed by speaker (no speaker in two splits): train 03 08 09 10 11 12, valid 13 14,
test 15 16. Steps:

1. **prepare** (cached in ``--work``): ``labels.csv`` gives each Emo-DB file its emotion and
   split. The wavs are extracted as they are (``mea extract`` reads audio-only files: no
   muxing into a video container); an audio-only file has no picture, so its vision sequence
   is empty. No transcript is used: Emo-DB is German and the packaged ASR model is
   English-only, so extraction runs with ``--no-asr`` and the text modality is empty.
2. **extract** (cached): ``mea extract`` into ``emodb.h5``; a rerun finds the store and skips.
3. **train** MEA, MulT and the ``functionals`` baseline with ``mea train --task multiclass``
   (MEA and MulT with ``--preset small``: ``docs/training.md``), for each seed, selection on
   valid; test scored once with the valid-chosen weights. ``--normalise group`` (the default)
   trains every model with ``--set train.normalise=group``: each speaker's features
   standardised with that speaker's own mean and std over all their clips (no labels), the
   standard speaker normalisation of speech emotion recognition (Busso et al. 2013, IEEE TAC).
   It is the default because Emo-DB's test speakers are two voices never seen in training:
   with one train-split mean/std (``--normalise train``) the models fit the train speakers'
   offsets and their test cross-entropy triples (docs/training.md, "Per-speaker
   normalisation"). ``labels.csv`` carries the speaker as the group column for it.
4. **print** one table: test accuracy and macro-F1 (mean ± std over seeds), training minutes
   per seed (wall and CPU), with the load average before and after, and the majority-class
   accuracy of the test split; then, for each neural model of several seeds, its seeds as one
   model (``mea eval RUN RUN ...``: their class probabilities averaged) on valid and test.

``--folds K`` cross-validates instead of the fixed split: every (model, seed) is one ``mea
train --split-by group --folds K --split-seed 0`` (K folds of the ten speakers, each fold's
valid speakers taken from its training part, no speaker in two splits of a fold), so every
speaker is tested once. The table then gives each model's cross-validated test metrics (a
seed's value: the mean over the folds; mean ± std over seeds), the spread over folds, and a
second table of each fold's test macro-F1 (mean over seeds) beside the first model's, with
the number of folds each model wins against it. Two test speakers per fold make one fold's
figure noisy; the ten speakers together are the steadier comparison.

``--speed-perturb 0.9,1.1`` adds speed-perturbed copies of the *training* speakers' clips (Ko et
al. 2015, "Audio augmentation for speech recognition", Interspeech: the waveform resampled, so
pitch, formants and tempo scale together, as with another vocal tract and speaking rate). Each
copy factor of a speaker is its own group (``03@sp090``), so per-speaker normalisation
standardises it on its own clips, as it does a new test voice; the valid and test clips are
untouched. The copies, the store and the runs are cached under their own names
(``speed-sp090-sp110/``, ``emodb-sp090-sp110.h5``, ``mea-group-sp090-sp110-s1``). It is refused
with ``--folds``, whose folds would put a speaker's copies in another split than the speaker.

The figures depend on which copy of Emo-DB is used: say so with every figure (the copy in the
GitHub repository ``sylaschacko/voice-emotion-analysis``, commit 4b0f64c, was cut or padded to
2.0 s at 22.05 kHz by its uploader; the original recordings are 16 kHz and of varying length).
Nothing is downloaded; the data is never part of the tests.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import resource
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
from scipy.io import wavfile
from scipy.signal import resample_poly

ROOT = Path(__file__).resolve().parents[1]
EMOTIONS = {
    "W": "anger",
    "L": "boredom",
    "E": "disgust",
    "A": "fear",
    "F": "happiness",
    "T": "sadness",
    "N": "neutral",
}
SPLITS = {
    **dict.fromkeys(("03", "08", "09", "10", "11", "12"), "train"),
    **dict.fromkeys(("13", "14"), "valid"),
    **dict.fromkeys(("15", "16"), "test"),
}
NAME = re.compile(r"^(?P<speaker>\d\d)(?P<text>[a-z]\d\d)(?P<emotion>[WLEAFTN])(?P<version>[a-z])$")
COPY = re.compile(r"^sp\d{3}$")
MODELS = ("mea", "mult", "functionals")


def parse_name(stem: str) -> tuple[str, str, str] | None:
    """``(speaker, text, emotion name)`` of an Emo-DB file stem, ``None`` if it is not one."""
    m = NAME.match(stem)
    if m is None:
        return None
    return m["speaker"], m["text"], EMOTIONS[m["emotion"]]


def speed_tag(factors: tuple[float, ...]) -> str:
    """The name part of a speed-perturbed corpus: ``sp090-sp110`` for factors 0.9 and 1.1."""
    return "-".join(f"sp{round(f * 100):03d}" for f in factors)


def speed_perturb(wav: Path, factor: float, out: Path) -> None:
    """Write ``wav`` played ``factor`` times as fast to ``out``: resampled by ``1/factor``
    (scipy's polyphase filter) and kept at the original rate, so duration scales by
    ``1/factor`` and every frequency (pitch, formants) by ``factor``."""
    rate, x = wavfile.read(wav)
    ratio = Fraction(factor).limit_denominator(100)
    y = resample_poly(x.astype(np.float64), ratio.denominator, ratio.numerator, axis=0)
    if np.issubdtype(x.dtype, np.integer):
        info = np.iinfo(x.dtype)
        y = np.clip(np.rint(y), info.min, info.max)
    wavfile.write(out, rate, y.astype(x.dtype))


def augment(data: Path, work: Path, factors: tuple[float, ...]) -> Path:
    """A folder ``work/speed-<tag>/`` holding every wav of ``data`` (linked) and, for each
    training speaker's wav, one speed-perturbed copy per factor (``03a01Fa_sp090.wav``); made
    once, reused after."""
    folder = work / f"speed-{speed_tag(factors)}"
    done = folder / ".complete"
    if done.exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    for wav in sorted(p for p in data.iterdir() if p.suffix.lower() == ".wav"):
        link = folder / wav.name
        if not link.exists():
            link.symlink_to(wav.resolve())
        parsed = parse_name(wav.stem)
        if parsed is None or SPLITS.get(parsed[0]) != "train":
            continue
        for f in factors:
            speed_perturb(wav, f, folder / f"{wav.stem}_{speed_tag((f,))}.wav")
    done.touch()
    return folder


def prepare(data: Path, work: Path, labels_name: str = "labels.csv") -> tuple[Path, int]:
    """Write ``work/<labels_name>`` for the Emo-DB wavs of ``data`` (emotion, split and speaker
    of each; a speed-perturbed copy ``03a01Fa_sp090`` is a training clip of group ``03@sp090``).
    Returns (labels, count); files that are not Emo-DB utterances are refused."""
    rows = []
    wavs = sorted(p for p in data.iterdir() if p.suffix.lower() == ".wav")
    for wav in wavs:
        stem, _, copy = wav.stem.partition("_")
        parsed = parse_name(stem)
        if parsed is None or parsed[0] not in SPLITS or (copy and not COPY.match(copy)):
            raise SystemExit(f"{wav}: not an Emo-DB file name (like 03a01Fa.wav)")
        speaker, _, emotion = parsed
        if copy and SPLITS[speaker] != "train":
            raise SystemExit(f"{wav}: a speed-perturbed copy of a {SPLITS[speaker]} speaker")
        group = f"{speaker}@{copy}" if copy else speaker
        rows.append((wav.stem, emotion, SPLITS[speaker], group))
    if not rows:
        raise SystemExit(f"{data}: no Emo-DB wav files (names like 03a01Fa.wav)")
    work.mkdir(parents=True, exist_ok=True)
    labels = work / labels_name
    with open(labels, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["video", "start", "end", "label", "split", "group"])
        for stem, emotion, split, speaker in rows:
            w.writerow([stem, "", "", emotion, split, speaker])
    return labels, len(rows)


def _mea(*args: str, threads: int) -> None:
    cmd = [str(ROOT / ".venv" / "bin" / "mea"), *args]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    subprocess.run(cmd, check=True, env=env)


def extract(data: Path, labels: Path, store: Path, threads: int) -> float:
    """``mea extract`` into ``store`` unless it exists with its speakers (``/samples/group``;
    a store from before the group column is extracted again, from the extraction cache);
    returns the wall seconds (0: cached)."""
    if store.exists():
        import h5py

        with h5py.File(store, "r") as f:
            if "group" in f["samples"]:
                return 0.0
        store.unlink()
    t0 = time.perf_counter()
    _mea(
        "extract", str(data), "--out", str(store), "--labels", str(labels),
        "--classes", ",".join(EMOTIONS.values()), "--no-asr", "--dataset", "emodb",
        "--threads", str(threads),
        threads=threads,
    )  # fmt: skip
    return time.perf_counter() - t0


def train(
    store: Path,
    model: str,
    seed: int,
    runs: Path,
    threads: int,
    epochs: int | None = None,
    normalise: str = "group",
    folds: int | None = None,
    tag: str = "",
) -> dict:
    """Train one (model, seed) with ``mea train`` in a child process; its metrics and times
    (with ``folds``: cross-validated, the mean over the folds and each fold's metrics). ``tag``
    names the corpus variant (``sp090-sp110``) in the run's name."""
    variant = f"{normalise}-{tag}" if tag else normalise
    name = f"{model}-{variant}-s{seed}" if folds is None else f"{model}-{variant}-cv{folds}-s{seed}"
    run_dir = runs / name
    metrics = run_dir / ("metrics.json" if folds is None else "folds.json")
    if not metrics.exists():
        args = [
            "train", str(store), "--task", "multiclass", "--model", model,
            "--seeds", str(seed), "--name", name, "--runs-dir", str(runs),
            "--threads", str(threads), "--device", "cpu",
            "--set", f"train.normalise={normalise}",
        ]  # fmt: skip
        if folds is not None:
            args += ["--split-by", "group", "--folds", str(folds), "--split-seed", "0"]
        if model != "functionals":
            args += ["--preset", "small"]
            if epochs is not None:
                args += ["--epochs", str(epochs)]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        load = os.getloadavg()[0]
        t0 = time.perf_counter()
        _mea(*args, threads=threads)
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        timing = {"wall_s": wall, "cpu_s": cpu, "load_1min": [load, os.getloadavg()[0]]}
        (run_dir / "bench_time.json").write_text(json.dumps(timing))
    out = json.loads(metrics.read_text())
    if folds is not None:  # the cross-validated figures, in the fixed split's layout
        out = {
            "test": {k: v["mean"] for k, v in out["test_mean_std"].items()},
            "valid": {k: v["mean"] for k, v in out["valid_mean_std"].items()},
            "fold_std": {k: v["std"] for k, v in out["test_mean_std"].items()},
            "folds": [f["test"] for f in out["folds"]],
        }
    out.update(json.loads((run_dir / "bench_time.json").read_text()))
    out["run_dir"] = str(run_dir)
    return out


def ensemble(run_dirs: list[Path], threads: int) -> dict[str, dict[str, float]]:
    """The seeds' runs scored as one model (``mea eval RUN RUN ... --json``: their class
    probabilities averaged), on valid and test."""
    out = {}
    for split in ("valid", "test"):
        cmd = [str(ROOT / ".venv" / "bin" / "mea"), "eval", *map(str, run_dirs), "--split", split,
               "--json", "--threads", str(threads)]  # fmt: skip
        done = subprocess.run(cmd, check=True, capture_output=True, text=True)
        out[split] = json.loads(done.stdout)["metrics"]
    return out


def ensemble_line(model: str, scores: dict[str, dict[str, float]], seeds: list[int]) -> str:
    """One printed line for a model's seeds averaged into one."""
    return (
        f"{model}, its {len(seeds)} seeds' class probabilities averaged (mea eval RUN RUN ...): "
        f"test accuracy {scores['test']['acc']:.3f}, test macro-F1 "
        f"{scores['test']['f1_macro']:.3f}, valid macro-F1 {scores['valid']['f1_macro']:.3f}"
    )


def runs_load(results: dict[str, list[dict]]) -> str:
    """The 1-minute load averages the timed runs started and ended at (a cached run was timed
    by an earlier invocation, under its own load), and how many runs have none recorded."""
    loads = [x for rows in results.values() for r in rows for x in r.get("load_1min", [])]
    missing = sum("load_1min" not in r for rows in results.values() for r in rows)
    said = f"{min(loads):.2f} to {max(loads):.2f}" if loads else "not recorded"
    return f"runs' 1-min load average {said}" + (
        f" ({missing} run(s) timed without it)" if loads and missing else ""
    )


def majority_accuracy(labels: Path) -> float:
    """Accuracy of predicting the training split's most frequent class on the test split."""
    with open(labels) as f:
        rows = list(csv.DictReader(f))
    train_labels = [r["label"] for r in rows if r["split"] == "train"]
    test_labels = [r["label"] for r in rows if r["split"] == "test"]
    top = max(set(train_labels), key=train_labels.count)
    return sum(lab == top for lab in test_labels) / len(test_labels)


def _ms(values: list[float]) -> str:
    a = np.asarray(values, float)
    return f"{a.mean():.3f} ± {a.std(ddof=1) if len(a) > 1 else 0.0:.3f}"


def table(results: dict[str, list[dict]]) -> str:
    """The benchmark table: one row per model, mean ± std over its seeds (cross-validated
    results: each seed's mean over the folds, and the std over folds beside it)."""
    cv = all("folds" in r for rows in results.values() for r in rows)
    last = "std over folds (test macro-F1)" if cv else "best epoch"
    lines = [
        f"| model | seeds | test accuracy | test macro-F1 | valid macro-F1 | {last} | "
        f"train min/seed{', all folds' if cv else ''} (wall) | CPU min/seed |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for model, rows in results.items():
        extra = (
            f"{np.mean([r['fold_std']['f1_macro'] for r in rows]):.3f}"
            if cv
            else ", ".join(str(r.get("best_epoch", "-")) for r in rows)
        )
        lines.append(
            f"| {model} | {len(rows)} | {_ms([r['test']['acc'] for r in rows])} | "
            f"{_ms([r['test']['f1_macro'] for r in rows])} | "
            f"{_ms([r['valid']['f1_macro'] for r in rows])} | {extra} | "
            f"{np.mean([r['wall_s'] for r in rows]) / 60:.2f} | "
            f"{np.mean([r['cpu_s'] for r in rows]) / 60:.2f} |"
        )
    return "\n".join(lines)


def fold_table(results: dict[str, list[dict]]) -> str:
    """Cross-validated results: each fold's test macro-F1 per model (mean over its seeds), and
    how many folds each model wins against the first model (a tie counts for neither)."""
    models = list(results)
    per_fold = {
        m: np.mean([[f["f1_macro"] for f in r["folds"]] for r in rows], axis=0)
        for m, rows in results.items()
    }
    ref = per_fold[models[0]]
    lines = [
        "| fold | " + " | ".join(models) + " |",
        "|---|" + "---:|" * len(models),
    ]
    for k in range(len(ref)):
        lines.append(f"| {k + 1} | " + " | ".join(f"{per_fold[m][k]:.3f}" for m in models) + " |")
    wins = [
        "—" if m == models[0] else f"{int((per_fold[m] > ref).sum())} of {len(ref)}" for m in models
    ]
    lines.append(f"| folds won against {models[0]} | " + " | ".join(wins) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path, help="folder of Emo-DB wav files (03a01Fa.wav, ...)")
    ap.add_argument("--work", type=Path, default=ROOT / "benchmarks" / ".real", help="cache")
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--threads", type=int, default=1, help="torch threads per training")
    ap.add_argument("--epochs", type=int, default=None, help="cap the neural models' epochs")
    ap.add_argument(
        "--normalise",
        choices=("group", "train"),
        default="group",
        help="feature standardisation: per speaker (group, default) or the train split's",
    )
    ap.add_argument(
        "--folds",
        type=int,
        default=None,
        help="cross-validate over K folds of the speakers instead of the fixed split",
    )
    ap.add_argument(
        "--speed-perturb",
        default="",
        metavar="FACTORS",
        help="add speed-perturbed copies of the training speakers' clips, e.g. 0.9,1.1",
    )
    ap.add_argument("--out", type=Path, default=None, help="also write the results as JSON")
    args = ap.parse_args(argv)
    if args.folds is not None and not 2 <= args.folds <= 10:
        print(f"--folds {args.folds}: Emo-DB has 10 speakers; give 2 to 10", file=sys.stderr)
        return 2
    if not args.data.is_dir():
        print(f"{args.data}: not a folder", file=sys.stderr)
        return 2
    try:
        factors = tuple(float(f) for f in args.speed_perturb.split(",") if f)
    except ValueError:
        factors = (0.0,)
    if not all(0.5 <= f <= 2.0 and f != 1.0 for f in factors):
        print(f"--speed-perturb {args.speed_perturb}: give factors between 0.5 and 2.0, "
              "not 1.0, e.g. 0.9,1.1", file=sys.stderr)  # fmt: skip
        return 2
    if factors and args.folds is not None:
        print("--speed-perturb and --folds: the folds would put a speaker's copies in "
              "another split than the speaker; use the fixed split", file=sys.stderr)  # fmt: skip
        return 2
    tag = speed_tag(factors) if factors else ""
    load_before = os.getloadavg()
    data = augment(args.data, args.work, factors) if factors else args.data
    labels, n = prepare(data, args.work, f"labels-{tag}.csv" if tag else "labels.csv")
    store = args.work / (f"emodb-{tag}.h5" if tag else "emodb.h5")
    ext_s = extract(data, labels, store, args.threads)
    seeds = [int(s) for s in args.seeds.split(",")]
    results: dict[str, list[dict]] = {}
    for model in args.models.split(","):
        results[model] = [
            train(
                store, model, seed, args.work / "runs", args.threads, args.epochs, args.normalise,
                args.folds, tag,
            )  # fmt: skip
            for seed in seeds
        ]
    load_after = os.getloadavg()
    print(
        f"Emo-DB copy at {args.data}: {n} wav files extracted as they are (audio only)"
        + (f", the training speakers' with speed-perturbed copies ({args.speed_perturb})"
           if factors else "")  # fmt: skip
        + ", no text (German speech, English-only ASR: --no-asr); "
        + (
            f"{args.folds} folds of the 10 speakers (mea train --split-by group --folds "
            f"{args.folds} --split-seed 0), every speaker tested once; "
            if args.folds
            else "speaker split train 03 08 09 10 11 12 / valid 13 14 / test 15 16; "
        )
        + f"extraction {'cached' if not ext_s else f'{ext_s / 60:.1f} min'}"
    )
    print(
        f"feature standardisation: train.normalise={args.normalise} "
        f"({'each speaker its own mean/std over all its clips, no labels' if args.normalise == 'group' else 'one mean/std from the train split'})"
    )
    print(table(results))
    ensembles: dict[str, dict[str, dict[str, float]]] = {}
    if args.folds:
        print(fold_table(results))
    else:
        for model, rows in results.items():
            if model != "functionals" and len(seeds) > 1:  # the baseline's fit is deterministic
                ensembles[model] = ensemble([Path(r["run_dir"]) for r in rows], args.threads)
                print(ensemble_line(model, ensembles[model], seeds))
        print(f"majority class (train's most frequent) test accuracy: {majority_accuracy(labels):.3f}")
    print(
        f"{runs_load(results)}; this invocation's load average (1/5/15 min) before "
        f"{load_before[0]:.2f}/{load_before[1]:.2f}/{load_before[2]:.2f}, after "
        f"{load_after[0]:.2f}/{load_after[1]:.2f}/{load_after[2]:.2f}; "
        f"{os.cpu_count()} CPUs; {args.threads} torch thread(s) per run; neural models "
        f"{'--preset small' if args.epochs is None else f'--preset small --epochs {args.epochs}'}"
    )
    if args.out:
        args.out.write_text(
            json.dumps({"results": results, "ensembles": ensembles, "load": [load_before, load_after]})
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
