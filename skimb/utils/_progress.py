"""One ``verbose`` convention and the library's logger.

``verbose=0`` (the default) is silent. ``verbose >= 1`` shows a tqdm bar wherever a user waits:
the training epochs (skorch's bar and epoch table), encoding, prediction, HAMR's embedding pass
and the second stages. Library messages (what a fit is doing, cache hits, timings) go to
``logging.getLogger("skimb")`` at INFO level whatever ``verbose`` is; the library adds no
handler, so they show once the application configures logging, e.g.
``logging.basicConfig(level=logging.INFO)``.
"""

from __future__ import annotations

import logging
import sys

from tqdm.auto import tqdm

__all__ = ["logger", "progress_bar"]

logger = logging.getLogger("skimb")


def progress_bar(total: int, desc: str, verbose, *, unit: str = "text"):
    """A tqdm bar on stderr, a silent one (same methods, no output) unless ``verbose``.

    >>> with progress_bar(3, "encoding", verbose=0) as bar:
    ...     bar.update(3)
    >>> bar.disable  # nothing was printed
    True
    """
    return tqdm(total=int(total), desc=desc, unit=unit, disable=not verbose, leave=False, file=sys.stderr,
                dynamic_ncols=True)
