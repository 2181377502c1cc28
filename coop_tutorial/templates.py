"""Hand-written prompt templates: data only (the functions that use them live in ``zero_shot.py``).

A template is a string with one ``{}`` where the class name goes. ``DATASET_TEMPLATES`` holds the single
template the CoOp paper uses as the zero-shot baseline for each dataset (its ``CUSTOM_TEMPLATES``);
embedded tasks add their own entries here. ``CLIP_IMAGENET_TEMPLATES`` are CLIP's 80 ImageNet templates,
taken from open_clip so they stay identical to what CLIP published.
"""
from __future__ import annotations

import open_clip

# The CoOp paper's hand-written prompts (official repo, trainers/zsclip.py CUSTOM_TEMPLATES).
DATASET_TEMPLATES: dict[str, str] = {
    "imagenet": "a photo of a {}.",
    "imagenet_v2": "a photo of a {}.",
    "imagenet_sketch": "a photo of a {}.",
    "imagenet_a": "a photo of a {}.",
    "imagenet_r": "a photo of a {}.",
    "caltech101": "a photo of a {}.",
    "oxford_pets": "a photo of a {}, a type of pet.",
    "stanford_cars": "a photo of a {}.",
    "oxford_flowers": "a photo of a {}, a type of flower.",
    "food101": "a photo of {}, a type of food.",
    "fgvc_aircraft": "a photo of a {}, a type of aircraft.",
    "sun397": "a photo of a {}.",
    "dtd": "{} texture.",
    "eurosat": "a centered satellite photo of {}.",
    "ucf101": "a photo of a person doing {}.",
}

# open_clip stores templates as lambdas; calling one with "{}" turns it back into a format string.
CLIP_IMAGENET_TEMPLATES: tuple[str, ...] = tuple(t("{}") for t in open_clip.OPENAI_IMAGENET_TEMPLATES)
# The 7-template subset CLIP's prompt-engineering notebook found almost as good as all 80.
CLIP_IMAGENET_TEMPLATES_SMALL: tuple[str, ...] = tuple(t("{}") for t in open_clip.SIMPLE_IMAGENET_TEMPLATES)
# open_clip's copy of CLIP's cleaned ImageNet names calls two classes "missile" (657 and 744) and two
# "sunglasses" (836 and 837). Two classes with one prompt cannot be told apart (and PromptLearner refuses
# duplicate names), so the second of each pair gets its WordNet name, as CLIP's own notebook list has it:
# 744 is n04008634 "projectile, missile", 836 is n04355933 "sunglass" (a burning glass).
_IMAGENET_RENAMES = {744: "projectile", 836: "sunglass"}
IMAGENET_CLASSNAMES: tuple[str, ...] = tuple(_IMAGENET_RENAMES.get(i, name)
                                             for i, name in enumerate(open_clip.IMAGENET_CLASSNAMES))


def task_ensemble(dataset: str, templates: list[str]) -> list[str]:
    """The templates a task's zero-shot ensemble averages, as CoOp's ``ZeroshotCLIP2`` builds it: on ImageNet the 7
    selected templates alone (``IMAGENET_TEMPLATES_SELECT``), elsewhere a task's own list (for the paper's other
    datasets: its template followed by the same 7)."""
    if dataset.lower() == "imagenet":
        return list(CLIP_IMAGENET_TEMPLATES_SMALL)
    return list(templates)


def dataset_template(dataset: str) -> str:
    """The default hand-written template of ``dataset`` (``"eurosat"``, or an embedded task like ``"shapes"``)."""
    key = dataset.lower().replace("-", "_")
    if key in DATASET_TEMPLATES:
        return DATASET_TEMPLATES[key]
    from .embedded.suite import TASKS  # embedded tasks keep their prompts with their recipe

    if key in TASKS:
        return TASKS[key].templates[0]
    raise ValueError(f"No default template for dataset {dataset!r}. Known: "
                     f"{', '.join(sorted(DATASET_TEMPLATES) + sorted(TASKS))}; "
                     f"or pass templates='a photo of a {{}}.' explicitly.")
