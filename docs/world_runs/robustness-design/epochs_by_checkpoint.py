"""Throwaway: does a shorter CoOp schedule give the `shapes` source gain on other pretraining runs' snapshots?
CoOp at several lengths, 16 shots, seeds 1-3, scored on held-out `shapes` validation images only (as the judge),
against the best hand-written prompt on the same images.

    python docs/world_runs/robustness-design/epochs_by_checkpoint.py CHECKPOINT...
"""
import sys

import pandas as pd

from coop_tutorial.clip_loader import load_clip
from coop_tutorial.evaluation import score
from coop_tutorial.sweeps import fit_coop
from coop_tutorial.task_features import encode_task, subset_features
from coop_tutorial.worlds import World
from coop_tutorial.zero_shot import template_accuracies

rows = []
for checkpoint in sys.argv[1:]:
    clip = load_clip("tiny", pretrained=None if checkpoint == "shipped" else checkpoint)
    recipe = World("embedded", device="cpu").recipe()(16, dataset="shapes")
    task = encode_task(clip, "shapes")
    for seed in (1, 2, 3):
        _, val_draw = task.few_shot_splits(16, seed)
        drawn = set(int(i) for i in val_draw.indices)
        held = subset_features(task.val, [i for i in range(task.val.n_images) if i not in drawn])
        best = 100 * float(template_accuracies(clip, held, task.templates, task.classnames)["accuracy"].max())
        for epochs in (10, 20, 50, 200):
            config = recipe.replace(epochs=epochs, eval_every=epochs)
            coop = 100 * score(fit_coop(clip, task, 16, seed, config).classifier, held)
            rows.append(dict(checkpoint=checkpoint.split("/")[-1], seed=seed, epochs=epochs, coop_minus_best=coop - best))
frame = pd.DataFrame(rows)
print(frame.pivot_table(index="checkpoint", columns="epochs", values="coop_minus_best", sort=False).round(1).to_string())
