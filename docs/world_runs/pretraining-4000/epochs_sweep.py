import sys, pandas as pd
from coop_tutorial.world.judge import *
from coop_tutorial.world import judge as J
from coop_tutorial.sweeps import coop_recipe, encode_task, fit_coop, fit_probe, subset_features
from coop_tutorial.evaluation import accuracy, predict_logits
from coop_tutorial.clip_loader import load_clip
from coop_tutorial.worlds import World
ckpt = sys.argv[1] if len(sys.argv) > 1 and sys.argv[1] != "shipped" else None
clip = load_clip("tiny", pretrained=ckpt)
recipe = coop_recipe(World("embedded", device="cpu"))
task = encode_task(clip, "shapes")
rows = []
variants = {f"ep{e}": dict(epochs=e) for e in (5, 10, 25, 50, 100, 200)}
variants.update({f"init ep{e}": dict(epochs=e, ctx_init="a photo of a") for e in (10, 50, 200)})
variants.update({f"csc ep{e}": dict(epochs=e, csc=True) for e in (50,)})
for seed in (1, 2, 3):
    _, val_draw = task.few_shot_splits(16, seed)
    drawn = set(int(i) for i in val_draw.indices)
    held = subset_features(task.val, [i for i in range(task.val.n_images) if i not in drawn])
    for name, ch in variants.items():
        cfg = recipe(16, dataset="shapes").replace(**ch)
        cfg = cfg.replace(eval_every=cfg.epochs)
        r = fit_coop(clip, task, 16, seed, cfg)
        rows.append(dict(variant=name, seed=seed, val=100*accuracy(*predict_logits(r.classifier, held)), train=r.history[-1]["train_acc"]*100))
f = pd.DataFrame(rows)
print(f.groupby("variant", sort=False)[["val", "train"]].mean().round(1))
