"""Throwaway: would a compound-name source (colour x shape) leave CoOp a gain over the best prompt, on validation?"""
import itertools, sys, numpy as np, pandas as pd, torch
from coop_tutorial.embedded import suite
from coop_tutorial.embedded.suite import TaskSpec, EmbeddedTask, _SHAPE_TEMPLATES
from coop_tutorial.embedded.corpus import sample_scene
from coop_tutorial.embedded.render import render
from coop_tutorial.clip_loader import load_clip
from coop_tutorial.sweeps import coop_recipe, encode_task, fit_coop, fit_probe, subset_features
from coop_tutorial.evaluation import score
from coop_tutorial.zero_shot import template_accuracies, zero_shot_classifier
from coop_tutorial.worlds import World
torch.set_num_threads(1)
ckpt = sys.argv[1] if len(sys.argv) > 1 and sys.argv[1] != "shipped" else None
variant = sys.argv[2] if len(sys.argv) > 2 else "c5s8"
colours = {"c5s8": ["red", "blue", "green", "yellow", "purple"], "c3s10": ["red", "blue", "green"]}[variant]
shapes = {"c5s8": ["circle", "square", "triangle", "star", "diamond", "cross", "ring", "heart"],
          "c3s10": list(suite._SHAPES)}[variant]
classes = list(itertools.product(colours, shapes))
names = [f"{c} {s}" for c, s in classes]
per = {"train": 32, "val": 16, "test": 0}
def draw(split):
    rng = np.random.default_rng([99, len(names), ["train", "val", "test"].index(split)])
    imgs, labels = [], []
    for i, (c, s) in enumerate(classes):
        for _ in range(per[split]):
            scene = sample_scene(rng, style="photo", count=int(rng.choice((1, 2))), colour=c, shape=s)
            imgs.append(render(scene, rng, 32)); labels.append(i)
    return np.stack(imgs), np.asarray(labels)
spec = TaskSpec(name="compound", label="shape", classes=tuple(names), classnames=tuple(names), templates=_SHAPE_TEMPLATES, analogue="x")
data = {sp: EmbeddedTask(spec, sp, *draw(sp)) for sp in ("train", "val")}
data["test"] = data["val"]
clip = load_clip("tiny", pretrained=ckpt)
task = encode_task(clip, "compound", load_task=lambda n, sp: data[sp])
recipe = coop_recipe(World("embedded", device="cpu"))
rows = []
for seed in (1, 2):
    _, vd = task.few_shot_splits(16, seed)
    drawn = set(int(i) for i in vd.indices)
    held = subset_features(task.val, [i for i in range(task.val.n_images) if i not in drawn])
    prompts = template_accuracies(clip, held, task.templates, task.classnames)
    cfg = recipe(16, dataset="compound"); cfg = cfg.replace(eval_every=cfg.epochs)
    row = dict(seed=seed, zs=100*score(zero_shot_classifier(clip, task.classnames, task.templates[0]), held),
               best=100*prompts.accuracy.max(), probe=100*score(fit_probe(task, 16, seed), held))
    for label, ch in {"coop": {}, "coop_init": {"ctx_init": "a photo of a"}}.items():
        row[label] = 100*score(fit_coop(clip, task, 16, seed, cfg.replace(**ch)).classifier, held)
    rows.append(row); print(row, flush=True)
f = pd.DataFrame(rows); print(f.mean().round(1))
