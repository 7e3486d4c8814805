"""Do the cores scale independently? One fit with one thread, with two threads, and two one-thread
fits side by side in separate processes (300 stratified Cyclone-Idai texts, 1 epoch, MiniLM).

Two single-threaded workers can beat one two-threaded process by at most
``2 x (two-thread fit time) / (side-by-side fit time)``.

    python benchmarks/thread_scaling.py > benchmarks/results/logs/thread_scaling.log
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path


def _fit(threads: int) -> None:
    import numpy as np

    from _common import load_subsampled
    from skimb import TransformerClassifier

    data = load_subsampled("cyclone_idai_2019", train_size=300)
    X, y = list(data.X_train), np.asarray(data.y_train)
    params = dict(max_epochs=1, batch_size=16, max_length=64, random_state=0)
    TransformerClassifier(**params, n_threads=1).fit(X[:40], y[:40])  # warm-up
    t0 = time.perf_counter()
    TransformerClassifier(**params, n_threads=threads).fit(X, y)
    print(json.dumps({"threads": threads, "fit_s": time.perf_counter() - t0}), flush=True)


def _run(n_processes: int, threads: int) -> list:
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    procs = [subprocess.Popen([sys.executable, __file__, "--fit", str(threads)], stdout=subprocess.PIPE, text=True,
                              env=env, cwd=Path(__file__).parent) for _ in range(n_processes)]
    return [json.loads(p.communicate()[0].strip().splitlines()[-1])["fit_s"] for p in procs]


def main():
    sys.path.insert(0, str(Path(__file__).parent))
    if len(sys.argv) > 2 and sys.argv[1] == "--fit":
        _fit(int(sys.argv[2]))
        return
    from _common import source_commit

    print("commit:", source_commit())
    print("one process, 1 thread:", _run(1, 1))
    print("one process, 2 threads:", _run(1, 2))
    print("two processes, 1 thread each:", _run(2, 1))


if __name__ == "__main__":
    main()
