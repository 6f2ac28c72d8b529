"""``python -m mea_cli.demo [--out demo]``: what ``make demo`` runs, from raw video to a prediction.

Every step is a ``mea`` command run as a user would type it (printed before it runs, with its
output), and each step ends with a line saying what it made:

1. make the example clips (:mod:`mea_cli.demo.clips`): a real photograph with a changing
   expression, synthetic speech, a sentiment label in [-3, 3]; and one new, unlabelled clip
   without a transcript for step 7;
2. ``mea extract`` them into a feature store (transcripts or ASR, face blendshapes, openSMILE);
3. ``mea info`` the store;
4. ``mea train`` a small MEA on it as a custom regression task on [-3, 3];
5. ``mea eval`` the checkpoint on the test split, with per-sample predictions;
6. ``mea ablate --drop psa``: the same model without its PSA blocks;
7. ``mea predict`` the new clip with the checkpoint.

The output folder holds only what the demo makes: it is emptied first when it is a demo folder
from an earlier run (marked by a ``.mea-demo`` file), and refused when it is something else.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

from mea_cli.demo.clips import PHOTO_CREDIT, make_examples, photo, talking_clip
from mea_cli.demo.media import speech_engine
from mea_cli.paths import ensure_dir, write_text

MARKER = ".mea-demo"
SMALL_MEA = [
    "--set", "d=16", "--set", "heads=2", "--set", "d_h=16", "--set", "psa_layers=1",
    "--set", "hca_layers=1", "--set", "train.lr=3e-3", "--set", "train.batch_size=8",
]  # fmt: skip
NEW_CLIP_TEXT = "the movie was wonderful and amazing"
TEXT_FEATURES = {"glove": "GloVe 50-d per word", "minilm": "MiniLM 384-d per word piece"}


def _say(text: str) -> None:
    print(text, flush=True)


def _mea(*args: str) -> None:
    """Run ``mea ARGS`` as a user would (this interpreter's package), showing the command."""
    _say("$ mea " + " ".join(shlex.quote(a) for a in args))
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    r = subprocess.run([sys.executable, "-m", "mea_cli", *args], env=env)
    if r.returncode != 0:
        raise SystemExit(f"demo: `mea {args[0]}` failed with exit code {r.returncode}")


def _prepare(out: Path) -> Path:
    if out.exists() and any(out.iterdir()):
        if not (out / MARKER).is_file():
            raise SystemExit(
                f"demo: {out} exists and is not a demo folder (no {MARKER}); pick another --out"
            )
        shutil.rmtree(out)
    ensure_dir(out, "demo folder")
    write_text(out / MARKER, "made by python -m mea_cli.demo; deleted by the next run\n")
    return out


def main(argv: list[str] | None = None) -> None:
    """``python -m mea_cli.demo``: the seven steps of the module docstring, in order."""
    ap = argparse.ArgumentParser(prog="python -m mea_cli.demo", description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("demo"), help="demo folder (default: demo)")
    ap.add_argument("--clips", type=int, default=48, help="example clips to make (default: 48)")
    ap.add_argument("--epochs", type=int, default=20, help="training epochs (default: 20)")
    ap.add_argument("--workers", type=int, default=2, help="extraction processes (default: 2)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the example clips")
    ap.add_argument("--text-backend", default="glove", choices=("glove", "minilm"),
                    help="text features: glove (default, the papers') or minilm (contextual)")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    out = _prepare(args.out)
    clips_dir, labels = out / "clips", out / "labels.csv"
    feats, runs = out / "feats.h5", out / "runs"

    _say(f"== 1/7 example clips -> {clips_dir}")
    _say(f"   face: {PHOTO_CREDIT}; expression: mouth corners warped up or down with the label")
    _say(f"   voice: eSpeak NG ({speech_engine()}); words carry the label (see examples/README.md)")
    made = make_examples(clips_dir, labels, n=args.clips, seed=args.seed)
    new_dir = ensure_dir(out / "new", "new clip folder")
    talking_clip(new_dir / "review.mp4", photo(), NEW_CLIP_TEXT, 0.9, pitch=67, wpm=174)
    counts = {s: sum(c.split == s for c in made) for s in ("train", "valid", "test")}
    _say(
        f"made: {len(made)} clips ({sum(c.seconds for c in made):.0f} s of video; "
        f"{counts['train']} train / {counts['valid']} valid / {counts['test']} test), "
        f"{sum(c.transcript for c in made)} with a .txt transcript, the rest for ASR; {labels}; "
        f"and {new_dir / 'review.mp4'} (unlabelled, no transcript: {NEW_CLIP_TEXT!r})"
    )
    for c in made[:3]:
        _say(f"   e.g. {c.name}: label {c.sentiment:+.1f}, says {c.text!r}, smile {c.smile:+.2f}")

    _say(f"== 2/7 extract features -> {feats}")
    # --language en: the clips are English, and Whisper's language check, made for recorded
    # speech, takes this synthetic voice for Thai or Khmer on about a third of them
    # (docs/extraction.md, "The spoken language"); `mea predict` inherits the stated language
    _mea("extract", str(clips_dir), "--labels", str(labels), "--label-range", "-3,3",
         "--out", str(feats), "--workers", str(args.workers),
         "--text-backend", args.text_backend, "--language", "en")  # fmt: skip
    text = TEXT_FEATURES[args.text_backend]
    _say(
        f"made: {feats} (text: {text}, vision: 52 blendshapes + head pose per frame, audio: eGeMAPS at 100 Hz)"
    )

    _say("== 3/7 what is in the store")
    _mea("info", str(feats))

    _say(f"== 4/7 train a small MEA (custom regression task on [-3, 3]) -> {runs / 'demo'}")
    _mea("train", str(feats), "--task", "regression", "--epochs", str(args.epochs),
         "--name", "demo", "--runs-dir", str(runs), "--device", "cpu", *SMALL_MEA)  # fmt: skip
    _say(f"made: {runs / 'demo'} (config.json, ckpt.pt best on valid, log.jsonl, metrics.json)")

    preds = out / "test-predictions.csv"
    _say("== 5/7 evaluate on the test split")
    _mea("eval", str(runs / "demo"), "--predictions", str(preds))
    _say(f"made: {preds} (every test clip's prediction beside its label)")

    _say("== 6/7 ablate: the same model without PSA (MEA Table V, w/o PSA)")
    _mea("ablate", "--runs-dir", str(runs), "--drop", "psa", "--device", "cpu")
    _say(f"made: {runs / 'demo' / 'ablation.md'} (and .csv, .tex)")

    answers = out / "predictions.csv"
    _say("== 7/7 predict a new clip (no transcript: ASR hears it)")
    _mea("predict", str(new_dir), "--ckpt", str(runs / "demo"), "--out", str(answers))
    _say(f"made: {answers}")
    _say(
        f"demo done in {time.perf_counter() - t0:.0f} s. The clips are a talking photograph with "
        "synthetic speech, not recordings of people: the numbers show the pipeline works, not "
        "how well MEA does on real data (docs/reproducing.md is for that)."
    )


if __name__ == "__main__":
    main()
