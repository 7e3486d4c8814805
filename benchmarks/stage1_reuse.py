"""How many stage-1 fits a CALoRA grid search makes, for cv = 2..5.

A search over stage-2 parameters (k) must fit stage 1 once per fold whatever the number of
candidates. Counted with the process-wide stage-1 cache's misses, on the bundled MiniLM with a
frozen backbone (stage 1 on cached features, so the count costs seconds).

    OMP_NUM_THREADS=1 python benchmarks/stage1_reuse.py --out benchmarks/results/stage1_reuse.json
"""

from __future__ import annotations

import argparse

from _common import command_line, machine_description, markdown_table, write_outputs


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--candidates", type=int, default=3)
    p.add_argument("--train-size", type=int, default=120)
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)

    from sklearn.model_selection import GridSearchCV

    from skimb import TransformerClassifier
    from skimb.datasets import load_goemotions_ekman
    from skimb.training import stage1_cache

    data = load_goemotions_ekman(subsample={"train": args.train_size})
    est = TransformerClassifier(head="calora", finetune="head", max_epochs=1, random_state=0)
    grid = {"head__k": list(range(1, args.candidates + 1))}
    rows = []
    for cv in (2, 3, 4, 5):
        stage1_cache.clear()
        GridSearchCV(est, grid, cv=cv, scoring="f1_macro", refit=False).fit(data.X_train, data.y_train)
        rows.append({"cv": cv, "candidate_fits": cv * args.candidates, "stage1_fits": stage1_cache.misses})
        print(rows[-1], flush=True)
    summary = {"command": command_line("benchmarks/stage1_reuse.py", argv), "machine": machine_description(),
               "rows": rows}
    md = "\n".join(["# Stage-1 fits of a CALoRA grid search", "", f"- command: `{summary['command']}`", "",
                    markdown_table(["cv", "candidate fits", "stage-1 fits"],
                                   [[r["cv"], r["candidate_fits"], r["stage1_fits"]] for r in rows])])
    write_outputs(args.out, summary, md)


if __name__ == "__main__":
    main()
