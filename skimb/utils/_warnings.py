"""Warnings attributed to the caller's line, not to skimb's internals (torch-free)."""

from __future__ import annotations

import os
import sys
import warnings

__all__ = ["warn_caller", "warn_ignored"]

#: Frames in files below this folder are skimb's own; a warning points past them.
PACKAGE_PREFIX = os.path.dirname(os.path.dirname(__file__)) + os.sep


def warn_caller(message, category=UserWarning) -> None:
    """``warnings.warn`` pointing at the first frame outside skimb: the user's line that called
    into it (``est.fit(X, y)``), however deep inside skimb the warning is raised and whichever
    path led there (``fit``, ``load_pretrained``, a direct call).

    Python >= 3.12 skips skimb's frames with ``skip_file_prefixes``; older versions count them
    to compute the ``stacklevel``.
    """
    if sys.version_info >= (3, 12):
        warnings.warn(message, category, skip_file_prefixes=(PACKAGE_PREFIX,))
        return
    frame, level = sys._getframe(1), 2  # level 2: the caller of warn_caller
    while frame is not None and frame.f_code.co_filename.startswith(PACKAGE_PREFIX):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)


def warn_ignored(ignored: dict, *, owner: str, prefix: str) -> None:
    """One :func:`warn_caller` per ignored parameter: ``ignored`` maps a parameter name to the
    reason the current configuration ignores it (``"{owner}: {prefix}{name} is ignored: {reason}."``)."""
    for key, reason in ignored.items():
        warn_caller(f"{owner}: {prefix}{key} is ignored: {reason}.")
