"""The per-user cache of mea-cli (``$XDG_CACHE_HOME/mea-cli``, default ``~/.cache/mea-cli``).

It holds the face model put there by ``make install``, converted word vectors, and the
sha256 digests of large model files: provenance records a digest of every model file an
extraction used, and hashing a 5 GB GloVe file on every run would cost tens of seconds, so a
digest is kept per (resolved path, size, mtime) and recomputed only when one of them changes.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from mea_cli.paths import PathError, file_sha256, write_text


def user_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/mea-cli`` (default ``~/.cache/mea-cli``): models and vector caches."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mea-cli"


def cached_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of ``path``, remembered in the user cache until the file's size or mtime change."""
    p = Path(path).resolve()
    st = p.stat()
    key = hashlib.sha1(f"{p}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()
    memo = user_cache_dir() / "digests" / f"{key}.sha256"
    try:
        digest = memo.read_text(encoding="ascii").strip()
        if len(digest) == 64:
            return digest
    except OSError:
        pass
    digest = file_sha256(p)
    try:
        memo.parent.mkdir(parents=True, exist_ok=True)
        write_text(memo, digest + "\n", "digest cache entry")
    except (OSError, PathError):  # a read-only home only costs the re-hash next time
        pass
    return digest
