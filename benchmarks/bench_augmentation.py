"""How close is the cached loop (a few augmented views per image, encoded once) to the official
loop (a fresh random crop of every image at every step)?

For every embedded task, 16 shots, seeds 1-3, CoOp (``CoOpConfig.embedded``) is trained four ways on the same
few-shot draw: cached with 1, 8 (the default) and 32 views per image, and uncached (``cached=False``: the official
loop, every step augments and encodes its batch). Each task's training images are encoded once with 32 views;
1 and 8 views are the first 1 and 8 of those (a view depends only on the seed and the image, so they are the
views an 8-view encoding would make). The table reports test accuracy (mean over seeds) and the mean difference
to the official loop, with the spread of that difference over tasks and seeds. This measures an
approximation; nothing is tuned on it.

    python benchmarks/bench_augmentation.py --shots 4       # 7 tasks x 3 seeds x 4 loops (the docs table)
    python benchmarks/bench_augmentation.py                 # 16 shots: the official loop takes ~4.5 min a run here
    python benchmarks/bench_augmentation.py --smoke         # seconds: one task, one seed, 2 epochs
    python benchmarks/bench_augmentation.py --csv out.csv   # also write the per-run rows
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import _common as C  # noqa: E402  (puts the repository on sys.path)
import pandas as pd

import coop_tutorial as ct
from coop_tutorial.features import FeatureSet
from coop_tutorial.evaluation import score
from coop_tutorial.sweeps import final_val_only, fit_coop
from coop_tutorial.task_features import TaskFeatures, encode_task

VIEWS = (1, 8, 32)
OFFICIAL = "official (fresh crop every step)"


def with_views(task, n_views: int):
    """The task with only the first ``n_views`` of its encoded training views (the whole splits encoded once)."""
    views = task.train_views
    kept = FeatureSet(views.features[:n_views], views.labels, views.classnames, {**views.meta, "n_views": n_views})
    return TaskFeatures.from_encoded(task.name, task.classnames, task.templates, task.train, kept, task.val,
                                     task.test, task.datasets)


def run(tasks: list[str], seeds: list[int], shots: int, epochs: int | None) -> pd.DataFrame:
    clip = ct.load_clip("tiny")
    rows = []
    for name in tasks:
        task = encode_task(clip, name, n_views=max(VIEWS))
        for seed in seeds:
            config = ct.CoOpConfig.embedded(shots)
            if epochs is not None:
                config = config.replace(epochs=epochs)
            config = final_val_only(config)
            loops = [(f"cached, {v} view{'s' if v > 1 else ''}", with_views(task, v), config) for v in VIEWS]
            loops.append((OFFICIAL, task, config.replace(cached=False)))
            for loop, data, cfg in loops:
                start = time.perf_counter()
                result = fit_coop(clip, data, shots, seed, cfg)
                seconds = time.perf_counter() - start
                rows.append(dict(task=name, seed=seed, loop=loop, seconds=seconds,
                                 accuracy=100 * score(result.classifier, task.test)))
                print(f"  {name} seed {seed} {loop}: {rows[-1]['accuracy']:.1f}% in {seconds:.1f} s", flush=True)
    return pd.DataFrame(rows)


def summarise(rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per task: accuracy by loop, mean over seeds; overall: mean accuracy, difference to the official loop)."""
    per_task = rows.pivot_table(index="task", columns="loop", values="accuracy", aggfunc="mean", sort=False)
    official = rows[rows["loop"] == OFFICIAL].set_index(["task", "seed"])["accuracy"]
    overall = []
    for loop, group in rows.groupby("loop", sort=False):
        diff = group.set_index(["task", "seed"])["accuracy"] - official
        overall.append(dict(loop=loop, accuracy=f"{group['accuracy'].mean():.1f}",
                            minus_official=f"{diff.mean():+.1f}", std_of_difference=f"{diff.std(ddof=0):.1f}",
                            largest_gap=f"{diff.abs().max():.1f}", seconds_per_run=f"{group['seconds'].mean():.1f}"))
    return per_task, pd.DataFrame(overall)


def main(argv: list[str] | None = None) -> None:
    from coop_tutorial.embedded.report import MAIN_TASKS

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    C.add_common_arguments(parser, "seconds: one task, one seed, 2 epochs")
    parser.add_argument("--tasks", nargs="+", default=MAIN_TASKS, choices=MAIN_TASKS)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--shots", type=int, default=16)
    parser.add_argument("--csv", type=Path, default=None)
    args = parser.parse_args(argv)
    threads = C.set_threads(args.threads)
    tasks, seeds, epochs = (args.tasks[:1], args.seeds[:1], 2) if args.smoke else (args.tasks, args.seeds, None)
    print(C.machine_header(threads, "Cached views vs the official fresh-crop loop (embedded tasks)"))
    start = time.perf_counter()
    rows = run(tasks, seeds, args.shots, epochs)
    if args.csv is not None:
        rows.to_csv(args.csv, index=False)
    per_task, overall = summarise(rows)
    print(f"\n## Test accuracy (%), {args.shots} shots, mean over seeds {seeds}\n")
    print(per_task.to_markdown(floatfmt=".1f"))
    print("\n## Mean over tasks and seeds; difference to the official loop per (task, seed)\n")
    print(C.markdown_table(overall.to_dict("records")))
    eight = overall.set_index("loop").loc["cached, 8 views", "minus_official"]
    print(f"\nSUMMARY: 8 cached views vs the official loop: {eight} points on average "
          f"({len(rows)} runs, {C.fmt_seconds(time.perf_counter() - start)})")


if __name__ == "__main__":
    main()
