"""Judge a pretrained embedded checkpoint on validation splits only, to choose between pretraining runs.

    python -m coop_tutorial.embedded.judge --checkpoint runs/s0_4000.safetensors runs/s1.safetensors

The world report (``embedded.report``) reads the test sets and checks the project's targets; choosing *which*
checkpoint to ship by those numbers would tune the test sets to the targets. This reads each task's validation
split instead: per seed, the images of the seed's few-shot validation draw are left out (the probe picks its
regularisation on them) and every method is scored on the rest (120 images a task for the embedded tasks).
The best hand-written prompt is picked and scored on that same held-out set, which flatters it a little: a
method that beats it here beats an honest best prompt.

``--shifts`` also scores the source's classifiers on the *design draw* of each of its shifted sets (a second
draw of the same distributions, 40 images a class, never the test images) and reads the paper's robustness claims
there (``shift_study``), so a checkpoint can be judged on robustness without touching the shifted test sets.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Optional, Sequence

import pandas as pd
from tqdm.auto import tqdm

from ..clip_loader import load_clip
from ..evaluation import mean_and_std, score
from ..features import encode_dataset
from ..shift_study import shift_checks, sketch_checks
from ..sweeps import fit_coop, fit_probe
from ..task_features import encode_task, subset_features
from ..tasks import load_task
from ..worlds import World
from ..zero_shot import template_accuracies, zero_shot_classifier
from .suite import DESIGN_SPLIT, TASKS, shifted_sets

DEFAULT_TASKS = ("shapes",)
METHODS = ("zero_shot", "linear_probe", "coop")


def judge_checkpoint(checkpoint: Optional[str], tasks: Sequence[str] = DEFAULT_TASKS, shots: int = 16,
                     seeds: Sequence[int] = (1, 2, 3), progress: bool = True, shifts: bool = False) -> pd.DataFrame:
    """Held-out validation accuracy (%) per (task, seed): zero-shot with the default template, the best
    hand-written prompt, the ``shots``-shot linear probe and CoOp (the embedded recipe).

    ``shifts=True``: also columns ``<method>@<shifted set>``, the same three classifiers scored on the design draw
    of each shifted set of the task (``shift_summary`` reads them)."""
    for name in tasks:
        if name not in TASKS or TASKS[name].source is not None:
            known = [n for n, spec in TASKS.items() if spec.source is None]
            raise ValueError(f"Cannot judge on {name!r}: a checkpoint is judged on a task with training and "
                             f"validation splits ({', '.join(known)}); a shifted set is read with --shifts on its "
                             f"source.")
    clip = load_clip("tiny", pretrained=checkpoint)
    recipe = World("embedded", device="cpu").recipe()
    rows = []
    jobs = [(name, seed) for name in tasks for seed in seeds]
    encoded = {name: encode_task(clip, name) for name in tasks}
    design = {name: {shifted: encode_dataset(clip, load_task(shifted, DESIGN_SPLIT), progress=False,
                                             name=f"{shifted}-{DESIGN_SPLIT}")
                     for shifted in (shifted_sets(name) if shifts else [])} for name in tasks}
    for name, seed in tqdm(jobs, desc="judging on validation", disable=not progress):
        task = encoded[name]
        _, val_draw = task.few_shot_splits(shots, seed)
        drawn = set(int(i) for i in val_draw.indices)
        held_out = subset_features(task.val, [i for i in range(task.val.n_images) if i not in drawn])
        prompts = template_accuracies(clip, held_out, task.templates, task.classnames)
        zero = zero_shot_classifier(clip, task.classnames, task.templates[0])
        config = recipe(shots, dataset=name)
        coop = fit_coop(clip, task, shots, seed, config.replace(eval_every=config.epochs)).classifier
        probe = fit_probe(task, shots, seed)
        row = dict(task=name, seed=seed, zero_shot=100 * score(zero, held_out),
                   best_prompt=100 * float(prompts["accuracy"].max()), linear_probe=100 * score(probe, held_out),
                   coop=100 * score(coop, held_out))
        for shifted, features in design[name].items():
            for method, classifier in zip(METHODS, (zero, probe, coop)):
                row[f"{method}@{shifted}"] = 100 * score(classifier, features)
        rows.append(row)
    frame = pd.DataFrame(rows)
    frame["coop_minus_best"] = frame["coop"] - frame["best_prompt"]
    frame["probe_minus_zero_shot"] = frame["linear_probe"] - frame["zero_shot"]
    return frame


def shift_summary(frame: pd.DataFrame, task: str) -> tuple[pd.DataFrame, list[tuple[str, bool, str]]]:
    """A judged task's shift table (rows methods; columns the task's held-out validation images, then the design
    draw of each shifted set; mean over seeds) and the paper's robustness claims read on it."""
    rows = frame[frame["task"] == task]
    shifted = [c.split("@", 1)[1] for c in rows.columns if c.startswith("zero_shot@")]
    if not shifted:
        raise ValueError(f"No shifted sets were judged for {task!r}: judge with shifts=True (--shifts).")
    table = pd.DataFrame({col: {m: rows[m if col == task else f"{m}@{col}"].mean() for m in METHODS}
                          for col in (task, *shifted)})
    best = float(rows["best_prompt"].mean())
    return table, shift_checks(table, best_prompt=best) + sketch_checks(table)


def judge_summary(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over seeds of every column, per task."""
    columns = [c for c in frame.columns if c not in ("task", "seed")]
    return pd.concat({c: mean_and_std(frame.groupby("task", sort=False)[c]) for c in columns}, axis=1)


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", nargs="+", default=[None],
                        help="embedded checkpoints (default: the shipped one)")
    parser.add_argument("--tasks", nargs="+", default=list(DEFAULT_TASKS))
    parser.add_argument("--shots", type=int, default=16)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--shifts", action="store_true",
                        help="also score on the design draw of each task's shifted sets and read the robustness claims")
    parser.add_argument("--csv", type=Path, default=None, help="append the per-seed rows here")
    args = parser.parse_args(argv)
    for checkpoint in args.checkpoint:
        if checkpoint is not None and not Path(checkpoint).is_file():
            parser.error(f"--checkpoint {checkpoint}: no such file.")
    for checkpoint in args.checkpoint:
        try:
            frame = judge_checkpoint(checkpoint, args.tasks, args.shots, args.seeds, shifts=args.shifts)
        except ValueError as error:
            parser.error(str(error))
        frame.insert(0, "checkpoint", checkpoint or "shipped")
        print(f"\n{checkpoint or 'shipped checkpoint'}")
        plain = frame.drop(columns=["checkpoint"] + [c for c in frame.columns if "@" in c])
        print(judge_summary(plain).round(1).to_string())
        for task in (args.tasks if args.shifts else []):
            if shifted_sets(task):
                table, checks = shift_summary(frame, task)
                print(f"\n{task}: held-out validation, then the design draw of each shifted set (%)")
                print(table.round(1).to_string())
                print("\n".join(f"  {'PASS' if ok else 'FAIL'}  {name}: {detail}" for name, ok, detail in checks))
        if args.csv is not None:
            frame.to_csv(args.csv, mode="a", header=not args.csv.exists(), index=False)


if __name__ == "__main__":
    main()
