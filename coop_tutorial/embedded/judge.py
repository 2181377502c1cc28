"""Judge a pretrained embedded checkpoint on validation splits only, to choose between pretraining runs.

    python -m coop_tutorial.embedded.judge --checkpoint runs/s0_4000.safetensors runs/s1.safetensors

The world report (``embedded.report``) reads the test sets and checks the project's targets; choosing *which*
checkpoint to ship by those numbers would tune the test sets to the targets. This reads each task's validation
split instead: per seed, the images of the seed's few-shot validation draw are left out (the probe picks its
regularisation on them) and every method is scored on the rest (120 images a task for the embedded tasks).
The best hand-written prompt is picked and scored on that same held-out set, which flatters it a little: a
method that beats it here beats an honest best prompt.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Optional, Sequence

import pandas as pd
from tqdm.auto import tqdm

from ..clip_loader import load_clip
from ..evaluation import mean_and_std, score
from ..sweeps import fit_coop, fit_probe
from ..task_features import encode_task, subset_features
from ..worlds import World
from ..zero_shot import template_accuracies, zero_shot_classifier

DEFAULT_TASKS = ("shapes",)


def judge_checkpoint(checkpoint: Optional[str], tasks: Sequence[str] = DEFAULT_TASKS, shots: int = 16,
                     seeds: Sequence[int] = (1, 2, 3), progress: bool = True) -> pd.DataFrame:
    """Held-out validation accuracy (%) per (task, seed): zero-shot with the default template, the best
    hand-written prompt, the ``shots``-shot linear probe and CoOp (the embedded recipe)."""
    clip = load_clip("tiny", pretrained=checkpoint)
    recipe = World("embedded", device="cpu").recipe()
    rows = []
    jobs = [(name, seed) for name in tasks for seed in seeds]
    encoded = {name: encode_task(clip, name) for name in tasks}
    for name, seed in tqdm(jobs, desc="judging on validation", disable=not progress):
        task = encoded[name]
        _, val_draw = task.few_shot_splits(shots, seed)
        drawn = set(int(i) for i in val_draw.indices)
        held_out = subset_features(task.val, [i for i in range(task.val.n_images) if i not in drawn])
        prompts = template_accuracies(clip, held_out, task.templates, task.classnames)
        zero = zero_shot_classifier(clip, task.classnames, task.templates[0])
        config = recipe(shots, dataset=name)
        coop = fit_coop(clip, task, shots, seed, config.replace(eval_every=config.epochs))
        rows.append(dict(task=name, seed=seed, zero_shot=100 * score(zero, held_out), best_prompt=100 * float(prompts["accuracy"].max()),
                         linear_probe=100 * score(fit_probe(task, shots, seed), held_out),
                         coop=100 * score(coop.classifier, held_out)))
    frame = pd.DataFrame(rows)
    frame["coop_minus_best"] = frame["coop"] - frame["best_prompt"]
    frame["probe_minus_zero_shot"] = frame["linear_probe"] - frame["zero_shot"]
    return frame


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
    parser.add_argument("--csv", type=Path, default=None, help="append the per-seed rows here")
    args = parser.parse_args(argv)
    for checkpoint in args.checkpoint:
        if checkpoint is not None and not Path(checkpoint).is_file():
            parser.error(f"--checkpoint {checkpoint}: no such file.")
    for checkpoint in args.checkpoint:
        frame = judge_checkpoint(checkpoint, args.tasks, args.shots, args.seeds)
        frame.insert(0, "checkpoint", checkpoint or "shipped")
        print(f"\n{checkpoint or 'shipped checkpoint'}")
        print(judge_summary(frame.drop(columns="checkpoint")).round(1).to_string())
        if args.csv is not None:
            frame.to_csv(args.csv, mode="a", header=not args.csv.exists(), index=False)


if __name__ == "__main__":
    main()
