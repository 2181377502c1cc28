"""Throwaway: is the probe's robustness a consequence of fitting L2-normalised features? lpclip (the paper's probe)
fits raw image features. Both probes on the shipped checkpoint, `shapes` 16 shots, seeds 1-3, C searched on the
draw's validation images as `fit_linear_probe` does; scored on held-out `shapes` validation images and on the design
draw of each shifted set (never the test images).

    python docs/world_runs/robustness-design/raw_probe.py
"""
import pandas as pd
import torch

from coop_tutorial.clip_loader import load_clip
from coop_tutorial.embedded.judge import shifted_sets
from coop_tutorial.embedded.suite import DESIGN_SPLIT
from coop_tutorial.linear_probe import fit_linear_probe
from coop_tutorial.tasks import load_task

clip = load_clip("tiny")


def raw(dataset, indices=None):
    indices = range(len(dataset)) if indices is None else indices
    images = torch.stack([clip.preprocess(dataset[i][0]) for i in indices])
    with torch.no_grad():
        features = clip.model.encode_image(images)
    return features, torch.as_tensor([dataset.targets[i] for i in indices])


from coop_tutorial.task_features import encode_task  # noqa: E402

task = encode_task(clip, "shapes")
train_set, val_set = task.datasets["train"], task.datasets["val"]
design = {name: raw(load_task(name, DESIGN_SPLIT)) for name in shifted_sets("shapes")}
norms = {name: float(f.norm(dim=1).mean()) for name, (f, _) in design.items()}
rows = []
for seed in (1, 2, 3):
    train_draw, val_draw = task.few_shot_splits(16, seed)
    drawn = set(int(i) for i in val_draw.indices)
    held = [i for i in range(len(val_set)) if i not in drawn]
    xt, yt = raw(train_set, train_draw.indices)
    xv, yv = raw(val_set, val_draw.indices)
    xh, yh = raw(val_set, held)
    for kind, transform in (("normalised", lambda x: x / x.norm(dim=1, keepdim=True)), ("raw (lpclip)", lambda x: x)):
        # fit_linear_probe normalises inside (fit and scoring); for the raw probe that step is swapped for a no-op
        from coop_tutorial import linear_probe as lp
        original = lp._normalise
        if kind.startswith("raw"):
            lp._normalise = lambda x: torch.as_tensor(x, dtype=torch.float32).cpu().numpy()
        try:
            probe = fit_linear_probe((transform(xt), yt), (transform(xv), yv))
            acc = lambda x, y: 100 * float((probe.predict(transform(x)) == y).float().mean())
            rows.append(dict(probe=kind, seed=seed, C=probe.C, shapes=acc(xh, yh),
                             **{name: acc(f, y) for name, (f, y) in design.items()}))
        finally:
            lp._normalise = original
frame = pd.DataFrame(rows)
table = frame.groupby("probe", sort=False).mean().drop(columns=["seed", "C"])
for name in design:
    table[f"drop {name}"] = table["shapes"] - table[name]
print(table.round(1).T.to_string())
print("mean raw feature norm on the design draws:", {k: round(v, 2) for k, v in norms.items()})
