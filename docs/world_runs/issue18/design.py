"""Design draws of candidate shifted sets (own seed, never the test draw), judged on zero-shot only."""
import sys, zlib, torch, numpy as np, threadpoolctl
torch.set_num_threads(1); threadpoolctl.threadpool_limits(1)
from dataclasses import replace
from coop_tutorial.clip_loader import load_clip
from coop_tutorial.world.tasks import TASKS, draw_task
from coop_tutorial.zero_shot import zero_shot_classifier
from coop_tutorial.features import encode_dataset
from coop_tutorial.world.tasks import EmbeddedTask
import coop_tutorial.world.tasks as T
ck = sys.argv[1] if len(sys.argv) > 1 and sys.argv[1] != "-" else None
clip = load_clip("tiny", pretrained=ck)
base = TASKS["shapes_v2"]
T._seed = lambda name, split: [99, zlib.crc32(name.encode()), 7]  # a design seed: not the test draw
z = zero_shot_classifier(clip, list(base.classnames), base.templates[0])
cands = {
  "source (design draw)": {"style": "photo", "count": (1, 2)},
  "v2 small": {"style": "photo", "count": (1, 2), "size": "small"},
  "v2 count 2-3": {"style": "photo", "count": (2, 3)},
  "sketch clean": {"style": "sketch", "count": (1, 2)},
  "sketch rough": {"style": "sketch", "count": (1, 2), "rough": True},
  "hard": {"style": "photo", "count": (1, 2), "hard": True},
  "painting": {"style": "painting", "count": (1, 2)},
}
only = sys.argv[2:] 
for name, fixed in cands.items():
    if only and not any(o in name for o in only): continue
    spec = replace(base, name="design-" + name, fixed=fixed, per_class={"test": 60})
    images, labels = draw_task(spec, "test")
    ds = EmbeddedTask(spec, "test", images, labels)
    f = encode_dataset(clip, ds, progress=False, name=spec.name)
    with torch.no_grad(): p = z.logits_from_features(f.view(0)).argmax(1)
    print(f"{name:22s} zero-shot {100*(p==f.labels).float().mean():.1f}", flush=True)
import functools, os
import coop_tutorial.world.render as R
orig = R._rough_sketch
for label, kw in []:
    if os.environ.get("ABL") is None: break
    R._rough_sketch = functools.partial(orig, **kw)
    spec = replace(base, name="design-sketch rough", fixed={"style": "sketch", "count": (1, 2), "rough": True}, per_class={"test": 60})
    images, labels = draw_task(spec, "test")
    f = encode_dataset(clip, EmbeddedTask(spec, "test", images, labels), progress=False, name=spec.name)
    with torch.no_grad(): p = z.logits_from_features(f.view(0)).argmax(1)
    print(f"rough, {label:14s} zero-shot {100*(p==f.labels).float().mean():.1f}", flush=True)

for noise in (0.7, 0.85):
    if os.environ.get("HARD") is None: break
    R.HARD_CONTRAST = noise
    spec = replace(base, name="design-hard", fixed={"style": "photo", "count": (1, 2), "hard": True}, per_class={"test": 60})
    images, labels = draw_task(spec, "test")
    f = encode_dataset(clip, EmbeddedTask(spec, "test", images, labels), progress=False, name=spec.name)
    with torch.no_grad(): p = z.logits_from_features(f.view(0)).argmax(1)
    print(f"hard contrast {noise} zero-shot {100*(p==f.labels).float().mean():.1f}", flush=True)
