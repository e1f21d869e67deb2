"""Where compiled kernels are kept, and how a cached library is loaded without ever crashing on it.

- ``$SYMXENT_CACHE_DIR`` or ``~/.cache/symxent``; each artefact is written under a temporary name and
  renamed into place, so concurrent first uses from several processes never see half a file.
- :func:`load_or_rebuild`: a cached library that cannot be loaded (truncated, corrupt: ``OSError: file
  too short``) is reported once (a warning), deleted and rebuilt, never a crash.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Callable

_REPORTED: set = set()


def cache_dir() -> Path:
    root = os.environ.get("SYMXENT_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "symxent")
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


class CacheWarning(UserWarning):
    """A cached artefact was unusable and has been rebuilt."""


def load_or_rebuild(path: Path, build: Callable[[], Path], load: Callable[[Path], object]):
    """``load(path)`` of the cached artefact ``path`` (built by ``build()`` when missing); when loading
    fails the file is removed, rebuilt and loaded again, with one warning per path."""
    if not path.exists():
        path = build()
    try:
        return load(path)
    except OSError as exc:
        if str(path) not in _REPORTED:
            _REPORTED.add(str(path))
            warnings.warn(f"symxent: the cached {path.name} could not be loaded ({exc}); rebuilt it",
                          CacheWarning, stacklevel=3)
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        return load(build())
