"""Bad option values through the real entry point, every command that takes them: a number out
of its range or not a number, a value outside the choices, an input file that is missing, not
readable as what it should be, or a directory. Each: one line, exit 2, no traceback, and the
folder it ran in unchanged (no run directory, store or cache made before the check)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.battery.harness import assert_refused, mea, snapshot


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with a small synthetic store (s.h5), files of junk bytes under the names of
    every kind of input, and an empty directory."""
    root = tmp_path_factory.mktemp("options")
    made = mea("synth", "--out", "s.h5", "--n", "12", cwd=root)
    assert made.returncode == 0, made.stderr
    junk = bytes(range(256)) * 8  # not HDF5, not a pickle, not UTF-8, not a video
    for name in ("junk.h5", "junk.pt", "junk.pkl", "junk.mp4", "junk.kv", "junk.csv", "junk.toml"):
        (root / name).write_bytes(junk)
    (root / "adir").mkdir()
    return root


def refused(work: Path, args: list[str], words: list[str]) -> str:
    before = snapshot(work)
    return assert_refused(mea(*args, cwd=work), words, before, [work])


OUT_OF_RANGE = [
    (["synth", "--out", "n.h5", "--n", "2"], ["--n", "3"]),
    (["synth", "--out", "n.h5", "--max-seconds", "1"], ["--max-seconds", "2"]),
    (["train", "s.h5", "--dataset", "mosi", "--epochs", "0"], ["--epochs", "1"]),
    (["train", "s.h5", "--dataset", "mosi", "--seeds", "-5"], ["--seeds", "-5"]),
    (["predict", "s.h5", "--ckpt", "junk.pt", "--batch-size", "0"], ["--batch-size", "1"]),
    (["extract", "adir", "--out", "n.h5", "--workers", "0"], ["--workers", "1"]),
    (["extract", "adir", "--out", "n.h5", "--max-side", "-1"], ["--max-side", "0"]),
    (["ablate", "--seeds", "-5"], ["--seeds", "1"]),
    (["sweep", "mu=0.1,0.2", "--seeds", "0"], ["--seeds", "1"]),
    (["compare", "s.h5", "--dataset", "mosi", "--models", "mea,mult", "--seeds", "-5"],
     ["--seeds", "1"]),
    (["compare", "s.h5", "--dataset", "mosi", "--models", "mea,mult", "--epochs", "0"],
     ["--epochs", "1"]),
    (["viz", "junk.pt", "--what", "tsne", "--samples", "0"], ["--samples", "1"]),
    # model sizes: minutes of module building, or an allocator traceback, before the bounds
    (["train", "s.h5", "--dataset", "mosi", "--set", "psa_layers=1000000000"],
     ["psa_layers", "between 1 and 64", "1000000000"]),
    (["train", "s.h5", "--dataset", "mosi", "--set", "d=100000"],
     ["'mea'", "parameters", "GiB", "more than this machine's"]),
    (["info", "--model", "mult", "--set", "d=20000"], ["'mult'", "parameters"]),
    # the data fields: a TypeError traceback from config_for in mea info
    (["info", "--model", "mea", "--set", "task=x"], ["task comes from --dataset", "not from --set"]),
    (["info", "--model", "mea", "--set", "num_labels=3", "--set", "dataset=mosei"],
     ["dataset, num_labels come from"]),
    (["train", "s.h5", "--dataset", "mosi", "--set", "num_labels=3"],
     ["num_labels comes from the store"]),
    (["compare", "s.h5", "--dataset", "mosi", "--models", "mea,mult", "--set", "mult.layers=65"],
     ["layers", "between 1 and 64"]),
]


@pytest.mark.parametrize(("args", "words"), OUT_OF_RANGE, ids=lambda a: " ".join(a))
def test_a_number_out_of_range(work: Path, args: list[str], words: list[str]) -> None:
    refused(work, args, words)


NOT_A_NUMBER = [
    ["synth", "--out", "n.h5", "--seed", "one"],
    ["train", "s.h5", "--dataset", "mosi", "--epochs", "ten"],
    ["extract", "adir", "--out", "n.h5", "--workers", "two"],
    ["extract", "adir", "--out", "n.h5", "--fps", "fast"],
    ["import", "csd", "adir", "--out", "n.h5", "--label-column", "first"],
    ["viz", "junk.pt", "--what", "tsne", "--seed", "1.5"],
]


@pytest.mark.parametrize("args", NOT_A_NUMBER, ids=" ".join)
def test_not_a_number(work: Path, args: list[str]) -> None:
    refused(work, args, [args[-2], "valid"])  # click 8.1 echoes the value, typer 0.29 not


BAD_CHOICE = [
    (["synth", "--out", "n.h5", "--like", "mosii"], ["--like", "mosii"]),
    (["import", "pickle", "junk.pkl", "--out", "n.h5"], ["kind", "pickle"]),
    (["import", "mult", "junk.pkl", "--out", "n.h5", "--dataset", "mosii"], ["--dataset"]),
    (["ablate", "--format", "html"], ["--format", "html"]),
    (["sweep", "mu=0.1", "--format", "html"], ["--format", "html"]),
    (["compare", "s.h5", "--dataset", "mosi", "--models", "mea,mult", "--format", "html"],
     ["--format", "html"]),
    # choices checked by the command itself, before any work
    (["train", "s.h5", "--dataset", "mosi", "--device", "tpu"], ["--device", "tpu"]),
    (["compare", "s.h5", "--dataset", "mosi", "--models", "mea,meaa"], ["meaa"]),
    (["extract", "adir", "--out", "n.h5", "--task", "ranking"], ["--task", "ranking"]),
    (["extract", "adir", "--out", "n.h5", "--face-backend", "openface"], ["openface"]),
    (["extract", "adir", "--out", "n.h5", "--shard", "3/2"], ["--shard", "3/2"]),
    # a code Whisper does not know was recorded as the clips' language (every ASR clip failed)
    (["extract", "adir", "--out", "n.h5", "--language", "xx"],
     ["--language 'xx'", "faster-whisper", "en, es"]),
]


@pytest.mark.parametrize(("args", "words"), BAD_CHOICE, ids=lambda a: " ".join(a))
def test_a_value_outside_the_choices(work: Path, args: list[str], words: list[str]) -> None:
    refused(work, args, words)


BAD_NAME = [
    # an empty name silently became the default run name; the others were refused without
    # naming the option; an empty argument is refused before any command reads it
    (["train", "s.h5", "--dataset", "mosi", "--name", ""], ["empty argument", "after --name"]),
    (["train", "s.h5", "--dataset", "mosi", "--name", " \t"], ["--name: run name", "is empty"]),
    (["train", "s.h5", "--dataset", "mosi", "--name", "../x"], ["--name: run name '../x'", "no path"]),
    (["train", "s.h5", "--dataset", "mosi", "--name", "a/b"], ["--name: run name 'a/b'", "no path"]),
    (["train", "--resume", "--name", ""], ["empty argument", "after --name"]),
    (["compare", "s.h5", "--dataset", "mosi", "--models", "mea,mult", "--name", ""],
     ["empty argument", "after --name"]),
    (["compare", "s.h5", "--dataset", "mosi", "--models", "mea,mult", "--name", ".."],
     ["--name: run name '..'", "no path"]),
    (["tune", "s.h5", "--dataset", "mosi", "--space", "mu=0:0.5", "--study", ""],
     ["empty argument", "after --study"]),
    # any empty argument: typer made '' the current folder (an unset shell variable searched
    # or filled it)
    (["extract", "", "--out", "n.h5"], ["empty argument", "after extract"]),
    (["train", "s.h5", "--dataset", "mosi", "--runs-dir", ""], ["empty argument", "after --runs-dir"]),
    (["train", "s.h5", "--dataset", "mosi", "--runs-dir="], ["empty argument", "--runs-dir="]),
    (["eval", ""], ["empty argument", "after eval"]),
    (["ablate", "--run", "", "--drop", "psa"], ["empty argument", "after --run"]),
]


@pytest.mark.parametrize(("args", "words"), BAD_NAME, ids=lambda a: " ".join(map(repr, a)))
def test_a_run_name_that_is_empty_or_a_path(work: Path, args: list[str], words: list[str]) -> None:
    refused(work, args, words)


UNREADABLE = [
    (["info", "none.h5"], ["none.h5"]),
    (["info", "junk.h5"], ["junk.h5", "HDF5"]),
    (["info", "adir"], ["adir", "directory"]),
    (["merge", "junk.h5", "s.h5", "--out", "n.h5"], ["junk.h5", "HDF5"]),
    (["merge", "adir", "--out", "n.h5"], ["adir", "directory"]),
    (["import", "mult", "junk.pkl", "--out", "n.h5"], ["junk.pkl", "pickle"]),
    (["import", "mmsa", "none.pkl", "--out", "n.h5"], ["none.pkl"]),
    (["import", "csd", "adir", "--out", "n.h5"], ["adir", ".csd"]),
    (["synth", "--out", "nodir/n.h5"], ["nodir"]),
    (["train", "junk.h5", "--dataset", "mosi"], ["junk.h5", "HDF5"]),
    (["train", "s.h5", "--dataset", "mosi", "--config", "junk.toml"], ["junk.toml", "TOML"]),
    (["eval", "junk.pt"], ["junk.pt"]),
    (["eval", "adir"], ["adir", "ckpt.pt"]),
    (["predict", "s.h5", "--ckpt", "junk.pt"], ["junk.pt"]),
    (["extract", "none", "--out", "n.h5"], ["none"]),
    (["extract", "adir", "--out", "n.h5", "--labels", "junk.csv"], ["junk.csv"]),
    (["extract", "adir", "--out", "n.h5", "--glove", "junk.kv"], ["junk.kv"]),
    (["ablate", "--run", "junk.pt"], ["junk.pt", "not a run directory"]),
    (["viz", "junk.pt", "--what", "tsne"], ["junk.pt"]),
]


@pytest.mark.parametrize(("args", "words"), UNREADABLE, ids=lambda a: " ".join(a))
def test_an_input_file_that_cannot_be_read(work: Path, args: list[str], words: list[str]) -> None:
    refused(work, args, words)


def test_seeds_must_fit_the_seeders() -> None:
    """In process (the entry point's case is above): 0..MAX_SEED is what torch seeds with
    (NumPy's legacy seeder gets the seed modulo 2**32)."""
    from mea_cli.config import ConfigError
    from mea_cli.train.cli_support import parse_seeds
    from mea_cli.train.config import MAX_SEED

    assert parse_seeds(f"0, 4294967296, {MAX_SEED}") == [0, 2**32, MAX_SEED]
    for text in ("-1", f"1111,{MAX_SEED + 1}"):
        with pytest.raises(ConfigError, match=f"seeds must lie in 0..{MAX_SEED}"):
            parse_seeds(text)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads any file")
@pytest.mark.parametrize("command", [["info"], ["train", "--dataset", "mosi"]])
def test_a_store_without_read_permission(work: Path, tmp_path: Path, command: list[str]) -> None:
    locked = tmp_path / "locked.h5"
    locked.write_bytes((work / "s.h5").read_bytes())
    locked.chmod(0)
    try:
        before = snapshot(tmp_path)
        assert_refused(mea(command[0], str(locked), *command[1:], cwd=tmp_path), ["locked.h5"],
                       before, [tmp_path])
    finally:
        locked.chmod(0o600)


# A hostile-input review found numbers out of range that ended in a traceback (numpy, Optuna,
# torch or h5py refusing them deep inside the command, sometimes after all of its work), and
# mistakes caught only once files existed: a --device resolved when the first run starts, a
# tune --seed that only failed each trial, a tune --best onto its own store found after the
# search. Each is now one line and exit 2 before anything is written.

TINY = "d=8,heads=2,d_h=8,psa_layers=2,hca_layers=1"


@pytest.fixture(scope="module")
def trained(work: Path) -> Path:
    """``work`` with a one-epoch, one-seed run of a tiny MEA (runs/base) on its store, a store
    with enough videos for grouped splits (s30.h5) and a config file (c.toml)."""
    # in the test process, not through the entry point: the run is an input here, not a case
    from mea_cli.data.synth import write_synthetic
    from mea_cli.train.trainer import TrainRequest, train_run

    model = dict(item.split("=") for item in TINY.split(","))
    train_run(TrainRequest(
        features=work / "s.h5", dataset="mosi", seeds=[1],
        model_overrides={k: int(v) for k, v in model.items()}, train_overrides={"epochs": 1},
        name="base", runs_dir=work / "runs", live=False,
    ))  # fmt: skip
    write_synthetic(work / "s30.h5", "mosi", n=30, seed=5, max_seconds=2.0)
    (work / "c.toml").write_text("[train]\nepochs = 1\n")
    return work


TUNE = ["tune", "s.h5", "--dataset", "mosi", "--epochs", "1", "--preset", "small",
        "--trials", "1", "--space", "mu=0:0.5", "--threads", "1", "--runs-dir", "t"]
COMPARE = ["compare", "s.h5", "--dataset", "mosi", "--models", "mea,mult", "--seeds", "1",
           "--epochs", "1", "--preset", "small", "--threads", "1", "--runs-dir", "c"]
TOO_MANY = "3000000000"  # torch.set_num_threads: "Overflow when unpacking long"
HUGE = str(10**23)

EARLY = [
    # seeds: numpy refused a negative one; h5py one beyond 64 bits, after the store was made
    (["synth", "--out", "n.h5", "--n", "3", "--max-seconds", "2", "--seed", "-1"],
     ["--seed", "0..4294967295", "-1"]),
    (["synth", "--out", "n.h5", "--n", "3", "--max-seconds", "2", "--seed", HUGE],
     ["--seed", HUGE]),
    (["viz", "runs/base", "--what", "tsne", "--seed", "-1", "--out", "vz"], ["--seed", "-1"]),
    (["viz", "runs/base", "--what", "tsne", "--seed", str(2**32), "--out", "vz"], ["--seed"]),
    ([*TUNE, "--device", "cpu", "--sampler-seed", "-1"], ["--sampler-seed", "-1"]),
    ([*TUNE, "--device", "cpu", "--seed", "-1"], ["--seed", "-1"]),
    (["train", "s30.h5", "--dataset", "mosi", "--split-by", "video", "--split-seed", "-1"],
     ["--split-seed", "-1"]),
    ([*COMPARE, "--split-by", "video", "--split-seed", HUGE], ["--split-seed", HUGE]),
    # threads: torch.set_num_threads takes a C int
    (["eval", "runs/base", "--threads", TOO_MANY], ["--threads", "at most", TOO_MANY]),
    (["train", "s.h5", "--dataset", "mosi", "--threads", TOO_MANY], ["--threads", TOO_MANY]),
    (["predict", "s.h5", "--ckpt", "runs/base", "--threads", TOO_MANY], ["--threads"]),
    (["extract", "adir", "--out", "n.h5", "--threads", TOO_MANY], ["--threads"]),
    ([*COMPARE[:-4], "--threads", TOO_MANY, "--runs-dir", "c"], ["--threads"]),
    # --device: resolved when the first run starts, after folders and event logs were made
    (["ablate", "--run", "runs/base", "--drop", "psa", "--device", "gpu"], ["--device", "gpu"]),
    (["ablate", "--run", "runs/base", "--drop", "psa", "--device", "cuda:99"], ["cuda:99"]),
    (["sweep", "mu=0.1", "--run", "runs/base", "--device", "gpu"], ["--device", "gpu"]),
    ([*COMPARE, "--device", "gpu"], ["--device", "gpu"]),
    ([*TUNE, "--device", "gpu"], ["--device", "gpu"]),
    (["train", "s30.h5", "--dataset", "mosi", "--folds", "3", "--split-by", "video",
      "--device", "gpu"], ["--device", "gpu"]),
    # a swept value that cannot train: refused before the sweep folder or any run exists
    (["sweep", "mu=0.1,5", "--run", "runs/base"], ["mu", "[0, 1]", "5.0"]),
    (["sweep", "d=8,100000", "--run", "runs/base"], ["parameters", "more than this machine's"]),
    # tune --best onto an input: refused before the search, not after it
    ([*TUNE, "--device", "cpu", "--best", "s.h5"], ["s.h5", "best config file", "input"]),
    ([*TUNE, "--device", "cpu", "--config", "c.toml", "--best", "c.toml"],
     ["c.toml", "best config file", "input"]),
]


@pytest.mark.parametrize(("args", "words"), EARLY, ids=lambda a: " ".join(a))
def test_refused_before_any_work(trained: Path, args: list[str], words: list[str]) -> None:
    refused(trained, args, words)


def test_seed_and_threads_bounds() -> None:
    """In process: the shared checks take exactly 0..2**32 - 1 and 1..MAX_THREADS."""
    from mea_cli.config import SEED_LIMIT, ConfigError, check_seed
    from mea_cli.errors import MeaError
    from mea_cli.runtime import MAX_THREADS, check_threads

    assert check_seed(0, "--seed") == 0 and check_seed(SEED_LIMIT - 1, "--seed") == SEED_LIMIT - 1
    for bad in (-1, SEED_LIMIT, 1.5, True):
        with pytest.raises(ConfigError, match="--sampler-seed: must be an integer in 0.."):
            check_seed(bad, "--sampler-seed")  # type: ignore[arg-type]
    check_threads(None), check_threads(1), check_threads(MAX_THREADS)
    for bad in (0, MAX_THREADS + 1):
        with pytest.raises(MeaError, match="--threads must be at"):
            check_threads(bad)
