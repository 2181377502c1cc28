import sys, torch, numpy as np, threadpoolctl
torch.set_num_threads(1); threadpoolctl.threadpool_limits(1)
from coop_tutorial.clip_loader import load_clip
from coop_tutorial.sweeps import encode_task, fit_coop, fit_probe, _accuracy
from coop_tutorial.training import CoOpConfig
from coop_tutorial.training import features_accuracy
from coop_tutorial.zero_shot import zero_shot_classifier
ck = sys.argv[1] if len(sys.argv) > 1 and sys.argv[1] != "-" else None
task = sys.argv[2] if len(sys.argv) > 2 else "shapes"
clip = load_clip("tiny", pretrained=ck)
t = encode_task(clip, task)
z = zero_shot_classifier(clip, t.classnames, t.templates[0])
print("zs", 100*_accuracy(z, t.test), "zs val", 100*_accuracy(z, t.val))
variants = {"default": {}, "init4": dict(n_ctx=4, ctx_init="a photo of a"), "csc": dict(csc=True)}
for name, ov in variants.items():
    accs, vaccs = [], []
    for seed in (1, 2, 3):
        cfg = CoOpConfig.embedded(16, **ov)
        r = fit_coop(clip, t, 16, seed, cfg)
        accs.append(100*features_accuracy(r.classifier, t.test)); vaccs.append(100*features_accuracy(r.classifier, t.val))
    print(name, np.mean(accs).round(1), "val", np.mean(vaccs).round(1))
pr = [100*fit_probe(t, 16, s).accuracy(t.test) for s in (1,2,3)]
print("probe16", np.mean(pr).round(1))
pr = [100*fit_probe(t, 32, s).accuracy(t.test) for s in (1,)]
print("probe32", np.mean(pr).round(1))
