"""The embedded world: a procedural image-caption corpus to pretrain the tiny CLIP on (``corpus``, ``captions``,
``render``, ``vocabulary``), the downstream tasks and shifted test sets drawn from the same renderer (``suite``),
and the tools that measure a checkpoint (``report`` on test sets, ``judge`` on validation splits,
``recipe_search``)."""
