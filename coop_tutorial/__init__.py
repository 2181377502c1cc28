"""coop-tutorial: learn, reproduce and explore CoOp prompt learning for CLIP.

The public API is ``__all__`` below: what the README, the notebooks and course material use. Besides it, two
submodules are public namespaces the notebooks import as such: ``coop_tutorial.plots`` (figures) and
``coop_tutorial.widgets`` (ipywidgets explorers); so are the chapter studies a single notebook reads from
(``shift_study`` for 05, ``base_to_new`` and ``meta_shift`` for 07, ``interpret_lab`` for 08) and, in the
assignments, the otter helpers (``exercises``, ``teaching``) and ``interpret``'s token-level functions.
``tests/test_public_api.py`` holds the notebooks to this. Everything else in the submodules is not a promise.
"""
from .clip_loader import ClipBundle, list_models, load_clip

# CoOp: prompt learner, classifiers, baselines, training, checkpoints, interpretation.
from .checkpoint import load_context, read_context, read_official_context, save_context
from .classifier import CoOpClassifier
from .evaluation import (EvalResult, accuracy, confusion_matrix, evaluate, per_class_accuracy, predict_logits,
                         score, summarize_seeds)
from .features import FeatureSet, encode_dataset
from .few_shot import FewShotSubset, few_shot_split, few_shot_val_split, official_few_shot_splits
from .interpret import (DriftTracker, context_drift, context_norms, context_similarity, context_words,
                        nearest_tokens, vocabulary_norm)
from .linear_probe import LinearProbe, fit_linear_probe
from .prompt_learner import CLASS_TOKEN_POSITIONS, PromptLearner
from .templates import CLIP_IMAGENET_TEMPLATES, DATASET_TEMPLATES, IMAGENET_CLASSNAMES, dataset_template
from .text_encoder import TextEncoder
from .training import CoOpConfig, TrainResult, learning_rate, train_coop
from .zero_shot import (ZeroShotClassifier, encode_texts, template_accuracies, zero_shot_classifier,
                        zero_shot_weights)

# One entry point for tasks in both worlds, and the switch between worlds.
from .tasks import list_tasks, load_task
from .worlds import World, use_world

# Claims that know their world: asserted in the embedded world, the paper's on real CLIP, skipped visibly on an
# untrained model.
from .claims import Claims, paired_difference

# CoCoOp; its protocols live in coop_tutorial.base_to_new (also `python -m coop_tutorial.base_to_new`, so not
# imported here), the meta-network analysis in coop_tutorial.meta_shift.
from .cocoop import (CoCoOpClassifier, CoCoOpConfig, CoCoOpPromptLearner, CoCoOpResult, load_cocoop,
                     save_cocoop, train_cocoop)

# Studies the notebooks run: tasks encoded once, prompt tables, method sweeps and their statistics.
from .task_features import EncodedTestSplit, TaskFeatures, encode_task, encode_test_split
from .prompt_study import ensemble_table, one_word_edits, prompt_summary, prompt_table
from .sweeps import DESIGN_VARIANTS, design_sweep, fit_coop, shift_drops, shift_table, shot_sweep
from .evaluation import sampling_error, sweep_summary
from .interpret import transplant_table, vocabulary_neighbour_distance

# The interpretation lab: what a learned context does, each instrument against a null.
from .interpret_lab import (DiscretePrompt, compare_contexts, interpolation_path, load_corpus, position_ablation,
                            recover_discrete_prompt, waywardness_test)

__version__ = "0.1.0"

# Reproducing the paper: the grid runner (coop_tutorial.reproduce), imported on first use.
_REPRODUCE_EXPORTS = ("RunSpec", "make_grid", "run_grid")

__all__ = [
    # models and worlds
    "ClipBundle", "list_models", "load_clip", "World", "use_world", "list_tasks", "load_task",
    # CoOp
    "PromptLearner", "CLASS_TOKEN_POSITIONS", "TextEncoder", "CoOpClassifier", "CoOpConfig", "TrainResult",
    "train_coop", "learning_rate",
    # data and features
    "FeatureSet", "encode_dataset", "FewShotSubset", "few_shot_split", "few_shot_val_split",
    "official_few_shot_splits",
    # baselines and templates
    "ZeroShotClassifier", "zero_shot_classifier", "zero_shot_weights", "encode_texts", "template_accuracies",
    "LinearProbe", "fit_linear_probe", "CLIP_IMAGENET_TEMPLATES", "DATASET_TEMPLATES", "IMAGENET_CLASSNAMES",
    "dataset_template",
    # evaluation and claims
    "EvalResult", "evaluate", "score", "accuracy", "confusion_matrix", "per_class_accuracy", "predict_logits",
    "summarize_seeds", "Claims", "paired_difference",
    # contexts on disk
    "save_context", "load_context", "read_context", "read_official_context",
    # reading a context
    "DriftTracker", "context_drift", "context_norms", "context_similarity", "context_words", "nearest_tokens",
    "vocabulary_norm", "DiscretePrompt", "compare_contexts", "interpolation_path", "load_corpus",
    "position_ablation", "recover_discrete_prompt", "waywardness_test",
    # studies the notebooks run
    "TaskFeatures", "EncodedTestSplit", "encode_task", "encode_test_split", "prompt_table", "prompt_summary",
    "one_word_edits", "ensemble_table", "fit_coop", "shot_sweep", "sweep_summary", "DESIGN_VARIANTS",
    "design_sweep", "shift_table", "shift_drops", "sampling_error", "transplant_table",
    "vocabulary_neighbour_distance",
    # CoCoOp
    "CoCoOpPromptLearner", "CoCoOpClassifier", "CoCoOpConfig", "CoCoOpResult", "train_cocoop",
    "save_cocoop", "load_cocoop",
    # reproduction
    *_REPRODUCE_EXPORTS,
    "__version__",
]


def __getattr__(name: str):
    """``ct.make_grid`` etc. import ``coop_tutorial.reproduce`` on first use, so that ``python -m
    coop_tutorial.reproduce`` does not find the module already imported by the package (a runpy warning)."""
    if name in _REPRODUCE_EXPORTS:
        from . import reproduce

        return getattr(reproduce, name)
    raise AttributeError(f"module 'coop_tutorial' has no attribute {name!r}")
