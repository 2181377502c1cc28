"""The shift source judged on its validation split only: zero-shot, best prompt, 16-shot probe, CoOp (3 seeds)."""
import sys, torch, numpy as np, threadpoolctl
torch.set_num_threads(1); threadpoolctl.threadpool_limits(1)
from dataclasses import replace
from coop_tutorial.clip_loader import load_clip
from coop_tutorial.sweeps import encode_task, fit_coop, fit_probe, prompt_table, prompt_summary
from coop_tutorial.training import features_accuracy
from coop_tutorial.zero_shot import zero_shot_classifier
ck = sys.argv[1] if len(sys.argv) > 1 and sys.argv[1] != "-" else None
clip = load_clip("tiny", pretrained=ck)
t = encode_task(clip, "shapes")
v = replace(t, test=t.val)
summ = prompt_summary(prompt_table(clip, [v])).loc["shapes"]
z = zero_shot_classifier(clip, t.classnames, t.templates[0])
zs = 100 * float((z.logits_from_features(t.val.view(0)).argmax(1) == t.val.labels).float().mean())
probe = np.mean([100 * fit_probe(t, 16, s).accuracy(t.val) for s in (1, 2, 3)])
coop = np.mean([100 * features_accuracy(fit_coop(clip, t, 16, s).classifier, t.val) for s in (1, 2, 3)])
print(f"{ck or 'shipped'}: shapes validation: zero-shot {zs:.1f}, best prompt {summ.best_prompt:.1f}, probe16 {probe:.1f}, "
      f"CoOp16 {coop:.1f}; CoOp - best {coop - summ.best_prompt:+.1f}, probe - zero-shot {probe - zs:+.1f}")
