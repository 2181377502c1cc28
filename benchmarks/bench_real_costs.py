"""What the notebooks cost in the real world: per-step costs measured here, scaled to one T4-class GPU.

Measured (random weights: the cost of a forward or backward pass does not depend on the values):
* the FLOPs of encoding one 224-px image (RN50, ViT-B/16) and of one CoOp training step (batch 32, forward and
  backward through the text encoder for every class's prompt, as ``train_coop`` runs it: truncated to the longest
  prompt, the shared prefix computed once), counted by ``torch.utils.flop_counter``; a step is one prompt per
  class, so its cost is linear in the class count: counted at 10 and 100 ImageNet class names, extrapolated;
* the CPU time of decoding and transforming one photo-sized JPEG (what feeds the image encoder), and of the image
  encoder and one training step on this CPU (the FLOPs' sanity check).

Estimated (stated as such in docs/notebooks.md): each notebook's work, counted from the paper's split sizes and
recipe (epochs per dataset and shot count) with the notebook's default parameters, priced on a T4 at an assumed
effective 4 TFLOP/s in float32 (half its 8.1 TFLOP/s peak) and at the measured JPEG cost on Colab's two CPU cores.

    python benchmarks/bench_real_costs.py            # prints the tables docs/notebooks.md quotes
    python benchmarks/bench_real_costs.py --smoke    # the dry run's tiny random CLIP, no estimates (seconds)
"""
from __future__ import annotations

import argparse
import io
import math
import time
from typing import Optional

from _common import machine_header, markdown_table, set_threads  # noqa: E402  (adds the checkout to sys.path)

import numpy as np
import torch
from PIL import Image
from torch.utils.flop_counter import FlopCounterMode

from coop_tutorial import CoOpConfig, IMAGENET_CLASSNAMES, PromptLearner, load_clip
from coop_tutorial.datasets.metadata import REAL_DATASETS
from coop_tutorial.shift_study import training_lengths
from coop_tutorial.training import build_classifier

T4_EFFECTIVE_FLOPS = 4e12  # float32, half of the 8.1 TFLOP/s peak: an assumption, not a measurement
COLAB_CPU_CORES = 2
MAIN = ["imagenet", "caltech101", "oxford_pets", "stanford_cars", "oxford_flowers", "food101", "fgvc_aircraft",
        "sun397", "dtd", "eurosat", "ucf101"]
COLAB = ["dtd", "eurosat", "oxford_flowers", "oxford_pets", "caltech101"]  # torchvision downloads, < 1 GB each
SHIFT_TEST = {"imagenet_v2": 10000, "imagenet_sketch": 50889, "imagenet_a": 7500, "imagenet_r": 30000}


def image_flops(clip) -> float:
    images = torch.zeros(1, 3, clip.image_size, clip.image_size)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        clip.model.encode_image(images)
    return float(counter.get_total_flops())


def step_flops(clip, n_classes: int) -> float:
    """FLOPs of one CoOp training step (batch 32 of cached image features) with ``n_classes`` prompts."""
    names = list(IMAGENET_CLASSNAMES)[:n_classes] if n_classes <= 1000 else None
    config = CoOpConfig.paper(16)
    classifier = build_classifier(clip, PromptLearner(clip, names, n_ctx=16), config)
    features = torch.nn.functional.normalize(torch.randn(32, clip.embed_dim), dim=-1)
    labels = torch.randint(0, n_classes, (32,))
    with FlopCounterMode(display=False) as counter:
        logits = classifier.logits_from_features(features)
        torch.nn.functional.cross_entropy(logits, labels).backward()
    return float(counter.get_total_flops())


def timed(fn, repeats: int = 3) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def jpeg_seconds(clip) -> float:
    """Decode one 500x375 JPEG (a typical photo of these datasets) and apply the eval transform."""
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (375, 500, 3), dtype=np.uint8)).save(buffer, "JPEG",
                                                                                                   quality=90)
    data = buffer.getvalue()

    def load():
        for _ in range(20):
            clip.preprocess(Image.open(io.BytesIO(data)))

    return timed(load) / 20


def epochs(dataset: str, shots: int) -> int:
    return CoOpConfig.paper(shots, dataset=dataset).epochs


def workload(tasks: list[str], shots=(1, 2, 4, 8, 16), seeds: int = 3, design: bool = True) -> dict:
    """Images to encode and CoOp steps (per class count) of notebook 04 with these parameters."""
    images, steps = 0, {}
    for name in tasks:
        info = REAL_DATASETS[name]
        n_cls, (_, _, n_test) = info.n_classes, info.paper_split_sizes
        images += n_test
        for k in shots:
            images += seeds * n_cls * (k * 9 + min(k, 4))  # the draw: 1 eval + 8 augmented views, and validation
            steps[n_cls] = steps.get(n_cls, 0) + seeds * epochs(name, k) * math.ceil(n_cls * k / 32)
        if design:  # four variants at 4 shots (the default is read from the sweep)
            steps[n_cls] = steps.get(n_cls, 0) + 4 * seeds * epochs(name, 4) * math.ceil(n_cls * 4 / 32)
    return {"images": images, "steps": steps}


def notebook_workloads(tasks: list[str], with_imagenet_shift: bool) -> dict[str, dict]:
    test = {n: REAL_DATASETS[n].paper_split_sizes[2] for n in tasks}
    ncls = {n: REAL_DATASETS[n].n_classes for n in tasks}
    showcase = "dtd" if "dtd" in tasks else tasks[0]
    out = {
        "01_overview": {"images": 20 * ncls[showcase], "steps": {}},
        "02_zero_shot_and_prompts": {"images": sum(test.values()), "steps": {}},
        "03_coop_from_scratch": {"images": test[showcase] + ncls[showcase] * (16 + 4),
                                 "steps": {ncls[showcase]: epochs(showcase, 16) * math.ceil(ncls[showcase] * 16 / 32)}},
        "04_shot_scaling": workload(tasks),
        # 06 trains two tracked runs on the showcase; its other contexts come from 04's cache
        "06_inside_the_context": {"images": sum(test.values()) + ncls[showcase] * 16 * 9,
                                  "steps": {ncls[showcase]: 2 * epochs(showcase, 16) * math.ceil(ncls[showcase] * 16 / 32)}},
    }
    if with_imagenet_shift:  # 16 shots x 3 seeds of ImageNet (from 04's cache when 04 ran), five test sets
        out["05_robustness"] = {"images": 50000 + sum(SHIFT_TEST.values()), "steps": {}}
    return out


def estimate(work: dict, img_flops: float, flops_per_step: dict[int, float], jpeg_s: float) -> tuple[float, float]:
    """(GPU seconds, CPU seconds feeding JPEGs on Colab's cores) of a workload."""
    gpu = work["images"] * img_flops + sum(n * flops_per_step[c] for c, n in work["steps"].items())
    return gpu / T4_EFFECTIVE_FLOPS, work["images"] * jpeg_s / COLAB_CPU_CORES


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="a tiny random CLIP, no estimates (seconds)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    threads = set_threads(args.threads)
    print(machine_header(threads, "Real-world costs: measured per step, estimated per notebook on a T4"))
    backbones = ["RN50", "ViT-B-16"]
    if args.smoke:  # the real world's code path on the dry run's tiny random CLIP: seconds
        import tempfile
        from pathlib import Path

        from coop_tutorial.clip_loader import save_random_clip

        smoke_file = save_random_clip(Path(tempfile.mkdtemp()) / "random_clip.safetensors")
        backbones = ["dry-run"]
    # a step's text pass is one prompt per class: its cost is linear in the class count, measured at two counts
    class_counts = [10, 100]
    rows, costs = [], {}
    for name in backbones:
        clip = load_clip(name, pretrained=str(smoke_file) if args.smoke else "random")
        img = image_flops(clip)
        jpeg = jpeg_seconds(clip)
        images = torch.zeros(32, 3, clip.image_size, clip.image_size)
        with torch.no_grad():
            encode_s = timed(lambda: clip.model.encode_image(images), repeats=1) / 32
        measured = {c: step_flops(clip, c) for c in class_counts}
        slope = (measured[100] - measured[10]) / 90
        per_step = {REAL_DATASETS[n].n_classes: measured[10] + slope * (REAL_DATASETS[n].n_classes - 10) for n in MAIN}
        per_step.update(measured)
        classifier = build_classifier(clip, PromptLearner(clip, list(IMAGENET_CLASSNAMES)[:47], n_ctx=16),
                                      CoOpConfig.paper(16))
        features = torch.nn.functional.normalize(torch.randn(32, clip.embed_dim), dim=-1)

        def one_step():
            loss = torch.nn.functional.cross_entropy(classifier.logits_from_features(features),
                                                     torch.randint(0, 47, (32,)))
            loss.backward()

        step_s = timed(one_step, repeats=2)
        costs[name] = (img, per_step, jpeg)
        rows.append({"backbone": name, "GFLOPs / image": f"{img / 1e9:.1f}",
                     "CPU ms / image": f"{encode_s * 1e3:.0f}", "CPU GFLOP/s (images)": f"{img / encode_s / 1e9:.0f}",
                     "JPEG decode + transform, ms": f"{jpeg * 1e3:.1f}",
                     "GFLOPs / CoOp step at 10, 100, 1000 classes": ", ".join(
                         f"{per_step[c] / 1e9:.0f}" for c in (10, 100, 1000)),
                     "CPU ms / step (47 classes)": f"{step_s * 1e3:.0f}",
                     "CPU GFLOP/s (step)": f"{step_flops(clip, 47) / step_s / 1e9:.0f}"})
    print(markdown_table(rows))
    if args.smoke:
        print("SUMMARY: smoke run, no estimates")
        return
    for profile, tasks, shift in (("all 11 datasets + ImageNet's variants", MAIN, True),
                                  ("Colab-sized: " + ", ".join(COLAB), COLAB, False)):
        est_rows = []
        for notebook, work in notebook_workloads(tasks, shift).items():
            cells = {"notebook": notebook, "images encoded": f"{work['images']:,}",
                     "CoOp steps": f"{sum(work['steps'].values()):,}"}
            for name in backbones:
                img, per_step, jpeg = costs[name]
                gpu, cpu = estimate(work, img, per_step, jpeg)
                cells[f"{name} on a T4 (estimate)"] = f"{max(gpu, cpu) / 60:.0f} min (GPU {gpu / 60:.0f}, JPEG {cpu / 60:.0f})"
            est_rows.append(cells)
        print(f"\nEstimated T4 time, {profile} (default parameters: 3 seeds, shots 1-16, the paper's epochs):")
        print(markdown_table(est_rows))
    # notebook 05's training-length study, off by default in the real world: ImageNet, 16 shots, 3 seeds, the
    # recipe's length read from 04's cache
    lengths = training_lengths(epochs("imagenet", 16))
    study = {"images": 0, "steps": {1000: 3 * sum(lengths[:-1]) * math.ceil(1000 * 16 / 32)}}
    print(f"\nNotebook 05 with LENGTHS = {lengths}: {study['steps'][1000]:,} more CoOp steps at 1000 classes; "
          + ", ".join(f"{name} ~{estimate(study, *costs[name])[0] / 3600:.1f} h on a T4 (estimate)" for name in backbones))
    print("SUMMARY: per-step costs measured; T4 times estimated at 4 TFLOP/s effective and 2 CPU cores decoding")


if __name__ == "__main__":
    main()
