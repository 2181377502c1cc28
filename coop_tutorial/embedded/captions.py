"""Alt-text-like captions for scenes of the embedded world.

Captions are what the tiny CLIP learns language from, so they are written the way web alt-text is: a frame
chosen by the rendering style, attributes mentioned only some of the time and with uneven synonyms, a few
filler words, and a little label noise. Backgrounds are mentioned rarely and counts loosely, so the image
tower learns more about them than the class names alone will retrieve: the gap prompt learning can close.
"""
from __future__ import annotations

import numpy as np

from .render import Scene
from .vocabulary import (BACKGROUND_FRAMES, COLOURS, COUNT_WORDS, FILLERS, PATTERNS, SHAPES, SIZES, STYLES)

# how often each attribute is named, by style (colour is invisible in sketches and thermal images)
MENTION = {
    "shape": 0.9,
    "colour": {"photo": 0.6, "mosaic": 0.5, "painting": 0.4, "negative": 0.6, "sketch": 0.0, "thermal": 0.0},
    "size": 0.25,
    "count": 0.6,
    "background": 0.3,
    "filler": 0.25,
}
NOISE = {"colour": 0.05, "shape": 0.03}  # a wrong word, as in real alt-text
GENERIC_OBJECTS = {"shape": 0.5, "thing": 0.25, "object": 0.25}
_IRREGULAR_PLURALS = {"box": "boxes", "cross": "crosses", "plus sign": "plus signs"}


def pick(rng: np.random.Generator, words: dict[str, float]) -> str:
    """One key of ``words`` drawn with its weight."""
    keys = list(words)
    weights = np.asarray([words[k] for k in keys], dtype=np.float64)
    return keys[int(rng.choice(len(keys), p=weights / weights.sum()))]


def plural(noun: str) -> str:
    if noun in _IRREGULAR_PLURALS:
        return _IRREGULAR_PLURALS[noun]
    head, _, last = noun.rpartition(" ")
    last = last + ("es" if last.endswith(("s", "x", "sh", "ch")) else "s")
    return f"{head} {last}" if head else last


def with_article(phrase: str) -> str:
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def object_phrase(scene: Scene, rng: np.random.Generator) -> str:
    """"two small red circles", "a star", "shapes"... with mentions drawn per attribute."""
    shape = scene.shape if rng.random() >= NOISE["shape"] else str(rng.choice(list(SHAPES)))
    noun = pick(rng, SHAPES[shape]) if rng.random() < MENTION["shape"] else pick(rng, GENERIC_OBJECTS)
    adjectives = []
    if rng.random() < MENTION["size"]:
        adjectives.append(pick(rng, SIZES[scene.size]))
    if rng.random() < MENTION["colour"][scene.style]:
        colour = scene.colour if rng.random() >= NOISE["colour"] else str(rng.choice(list(COLOURS)))
        adjectives.append(pick(rng, COLOURS[colour][1]))
    core = " ".join(adjectives + [noun])
    if scene.count == 1:
        count_word = pick(rng, COUNT_WORDS[1])
        return with_article(core) if count_word == "a" else f"{count_word} {core}"
    if rng.random() < MENTION["count"]:
        return f"{pick(rng, COUNT_WORDS[scene.count])} {plural(core)}"
    return plural(core)


def background_phrase(scene: Scene, rng: np.random.Generator) -> str:
    if scene.style in ("sketch", "thermal") or rng.random() >= MENTION["background"]:
        return ""
    frame = pick(rng, BACKGROUND_FRAMES)
    return frame.format(p=pick(rng, PATTERNS[scene.pattern]), c=pick(rng, COLOURS[scene.bg_colour][1]))


def caption(scene: Scene, rng: np.random.Generator) -> str:
    """A caption for ``scene``; the same rng state always gives the same caption."""
    frame = pick(rng, STYLES[scene.style][1])
    text = frame.format(o=object_phrase(scene, rng), b=background_phrase(scene, rng))
    if rng.random() < MENTION["filler"]:
        filler = str(rng.choice(FILLERS))
        text = f"{filler} {text}" if rng.random() < 0.5 else f"{text} {filler}"
    return text
