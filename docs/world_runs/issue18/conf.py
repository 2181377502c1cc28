import sys, torch, numpy as np, threadpoolctl
torch.set_num_threads(1); threadpoolctl.threadpool_limits(1)
from coop_tutorial.clip_loader import load_clip
from coop_tutorial.sweeps import encode_task, encode_test_set
from coop_tutorial.zero_shot import zero_shot_classifier
ck = sys.argv[1] if len(sys.argv) > 1 else None
clip = load_clip("tiny", pretrained=ck)
t = encode_task(clip, "shapes", n_views=1)
for tmpl in t.templates:
    z = zero_shot_classifier(clip, t.classnames, tmpl)
    with torch.no_grad(): p = z.logits_from_features(t.test.view(0)).argmax(1)
    print(f"{tmpl:40s} {100*(p==t.test.labels).float().mean():.1f}")
z = zero_shot_classifier(clip, t.classnames, t.templates[0])
with torch.no_grad(): p = z.logits_from_features(t.test.view(0)).argmax(1)
n=len(t.classnames); C=np.zeros((n,n),int)
for a,b in zip(t.test.labels.tolist(), p.tolist()): C[a,b]+=1
print(t.classnames); print(C)
print("per-class acc", dict(zip(t.classnames, (C.diagonal()/C.sum(1)*100).round(0))))
print("pred freq", dict(zip(t.classnames, C.sum(0))))
