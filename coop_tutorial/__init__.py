"""coop-tutorial: learn, reproduce and explore CoOp prompt learning for CLIP.

The public API is small and re-exported here; see the README for the notebook map.
"""
from .clip_loader import ClipBundle, list_models, load_clip

__version__ = "0.1.0"
