"""How ``CoOpConfig.embedded`` was chosen: candidate recipes compared on the tasks' validation splits only.

    python -m coop_tutorial.embedded.recipe_search                    # every candidate, 16 shots, seeds 1-2
    python -m coop_tutorial.embedded.recipe_search --shots 1 2 16 --candidates current "n_ctx 4"

Each candidate is a set of ``CoOpConfig`` changes on top of the embedded recipe (``epochs_x`` scales its epoch
table). Every run trains on a few-shot draw, exactly as the report does, and is scored on the task's whole
validation split (16 images a class), never on a test split: the test sets judge the chosen recipe, they do
not choose it. The winner is the candidate with the best mean validation accuracy over tasks and shots.
"""
from __future__ import annotations

import argparse
import time
from typing import Any, Mapping, Optional, Sequence

import pandas as pd
from tqdm.auto import tqdm

from ..clip_loader import ClipBundle, load_clip
from ..evaluation import score
from ..sweeps import final_val_only, fit_coop
from ..task_features import TaskFeatures, encode_task
from ..training import CoOpConfig

# The candidates compared when the recipe was last chosen (see the README's embedded-world section).
CANDIDATES: dict[str, dict[str, Any]] = {
    "current": {},
    "epochs x2": {"epochs_x": 2},
    "n_ctx 4": {"n_ctx": 4},
    "n_ctx 4, epochs x2": {"n_ctx": 4, "epochs_x": 2},
    "lr 6e-3": {"lr": 6e-3},
    "lr 6e-3, n_ctx 4": {"lr": 6e-3, "n_ctx": 4},
}


def candidate_config(changes: Mapping[str, Any], shots: int) -> CoOpConfig:
    """The embedded recipe for ``shots`` with ``changes`` applied (``epochs_x`` multiplies the epochs)."""
    changes = dict(changes)
    factor = changes.pop("epochs_x", 1)
    base = CoOpConfig.embedded(shots, **changes)
    return base.replace(epochs=max(1, round(base.epochs * factor)))


def recipe_search(clip: ClipBundle, tasks: Sequence[TaskFeatures], candidates: Mapping[str, Mapping[str, Any]],
                  shots: Sequence[int] = (16,), seeds: Sequence[int] = (1, 2),
                  progress: bool = True) -> pd.DataFrame:
    """Validation accuracy (%) of CoOp under each candidate: one row per (candidate, task, shots, seed)."""
    jobs = [(c, t, k, s) for c in candidates for t in tasks for k in shots for s in seeds]
    rows = []
    for name, task, k, seed in tqdm(jobs, desc="recipe search", disable=not progress):
        config = final_val_only(candidate_config(candidates[name], k))
        classifier = fit_coop(clip, task, k, seed, config).classifier
        rows.append(dict(candidate=name, task=task.name, shots=k, seed=seed,
                         val_accuracy=100 * score(classifier, task.val)))
    return pd.DataFrame(rows)


def search_summary(results: pd.DataFrame) -> pd.DataFrame:
    """Candidates (rows, best first) by task (columns: mean over seeds and shots) and their overall mean."""
    table = results.pivot_table(index="candidate", columns="task", values="val_accuracy", aggfunc="mean", sort=False)
    table["mean"] = results.groupby("candidate", sort=False)["val_accuracy"].mean()
    return table.sort_values("mean", ascending=False)


def main(argv: Optional[list[str]] = None) -> None:
    from .report import MAIN_TASKS

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=None, help="an embedded checkpoint (default: the shipped one)")
    parser.add_argument("--shots", type=int, nargs="+", default=[16])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--tasks", nargs="+", default=MAIN_TASKS, choices=MAIN_TASKS)
    parser.add_argument("--candidates", nargs="+", default=list(CANDIDATES), choices=list(CANDIDATES))
    args = parser.parse_args(argv)
    start = time.time()
    clip = load_clip("tiny", pretrained=args.checkpoint)
    tasks = [encode_task(clip, name) for name in args.tasks]
    results = recipe_search(clip, tasks, {c: CANDIDATES[c] for c in args.candidates}, args.shots, args.seeds)
    print(f"CoOp validation accuracy (%), shots {args.shots}, seeds {args.seeds} (the test splits are not used)")
    print(search_summary(results).to_string(float_format=lambda v: f"{v:.1f}"))
    print(f"\n({time.time() - start:.0f} s)")


if __name__ == "__main__":
    main()
