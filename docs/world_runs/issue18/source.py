"""Candidate shift sources judged on validation splits only (zero-shot, best prompt, 16-shot probe, CoOp)."""
import sys, os, torch, numpy as np, threadpoolctl
torch.set_num_threads(1); threadpoolctl.threadpool_limits(1)
from dataclasses import replace
from coop_tutorial.clip_loader import load_clip
from coop_tutorial.world.tasks import TASKS
from coop_tutorial.sweeps import encode_task, fit_coop, fit_probe
from coop_tutorial.training import CoOpConfig, features_accuracy
from coop_tutorial.zero_shot import zero_shot_classifier
from coop_tutorial.world.tasks import load_embedded_task
clip = load_clip("tiny", pretrained=None)
cands = {"large single": {"style": "photo", "count": 1, "size": "large"},
         "plain bg": {"style": "photo", "count": (1, 2), "pattern": "plain"}}
for name, fixed in cands.items():
    if len(sys.argv) > 1 and name not in sys.argv[1:]: continue
    TASKS["cand"] = replace(TASKS["shapes"], name="cand", fixed=fixed)
    t = encode_task(clip, "cand", load_task=lambda n, s: load_embedded_task(n, s, root="runs/diag/data"))
    accs = []
    for tmpl in t.templates:
        z = zero_shot_classifier(clip, t.classnames, tmpl)
        with torch.no_grad(): accs.append(100*float((z.logits_from_features(t.val.view(0)).argmax(1) == t.val.labels).float().mean()))
    probe = np.mean([100*fit_probe(t, 16, s).accuracy(t.val) for s in (1, 2, 3)])
    coop = np.mean([100*features_accuracy(fit_coop(clip, t, 16, s).classifier, t.val) for s in (1, 2, 3)])
    print(f"{name}: val zs {accs[0]:.1f} best {max(accs):.1f} probe16 {probe:.1f} coop16 {coop:.1f} -> coop-best {coop-max(accs):+.1f} probe-zs {probe-accs[0]:+.1f}", flush=True)
