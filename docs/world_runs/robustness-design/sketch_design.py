"""Throwaway: why does CoOp lose more than zero-shot on the sketches? Variants of CoOp learned on `shapes`
(16 shots, seeds 1-3, shipped checkpoint), scored on held-out `shapes` validation images and on the *design draw*
of each shifted set (never the test images). An analysis, not a recipe search: nothing here changes a recipe.

    python docs/world_runs/robustness-design/sketch_design.py [checkpoint]
"""
import sys

import pandas as pd

from coop_tutorial.clip_loader import load_clip
from coop_tutorial.embedded.judge import shifted_sets
from coop_tutorial.embedded.suite import DESIGN_SPLIT
from coop_tutorial.evaluation import score
from coop_tutorial.features import encode_dataset
from coop_tutorial.sweeps import fit_coop, fit_probe
from coop_tutorial.task_features import encode_task, subset_features
from coop_tutorial.tasks import load_task
from coop_tutorial.worlds import World
from coop_tutorial.zero_shot import zero_shot_classifier

clip = load_clip("tiny", pretrained=sys.argv[1] if len(sys.argv) > 1 else None)
recipe = World("embedded", device="cpu").recipe()(16, dataset="shapes")
task = encode_task(clip, "shapes")
design = {name: encode_dataset(clip, load_task(name, DESIGN_SPLIT), progress=False) for name in shifted_sets("shapes")}
variants = {"recipe (M=16, random)": {}, "M=4, random": dict(n_ctx=4), "M=4, 'a photo of a'": dict(ctx_init="a photo of a"),
            "M=16, 5 epochs": dict(epochs=5), "M=16, 20 epochs": dict(epochs=20),
            "M=16, class-specific": dict(csc=True)}
rows = []
for seed in (1, 2, 3):
    _, val_draw = task.few_shot_splits(16, seed)
    drawn = set(int(i) for i in val_draw.indices)
    held = subset_features(task.val, [i for i in range(task.val.n_images) if i not in drawn])
    fitted = {"zero-shot": zero_shot_classifier(clip, task.classnames, task.templates[0]),
              "linear probe": fit_probe(task, 16, seed)}
    for name, change in variants.items():
        config = recipe.replace(**change)
        fitted[f"CoOp {name}"] = fit_coop(clip, task, 16, seed, config.replace(eval_every=config.epochs)).classifier
    for name, classifier in fitted.items():
        rows.append(dict(method=name, seed=seed, shapes=100 * score(classifier, held),
                         **{s: 100 * score(classifier, f) for s, f in design.items()}))
frame = pd.DataFrame(rows)
table = frame.groupby("method", sort=False).mean().drop(columns="seed")
table["sketch_drop"] = table["shapes"] - table["shapes_sketch"]
table["sketch_minus_zero_shot"] = table["shapes_sketch"] - table.loc["zero-shot", "shapes_sketch"]
print(table.round(1).to_string())
