"""The embedded world's vocabulary: what can be drawn, and the words captions use for it.

Data only, kept apart from the rendering and caption logic (as open_clip keeps its zero-shot metadata apart).
Each attribute value lists its caption words with weights: captions, like web alt-text, mostly use a common
word and rarely the others. Some words are shared between attributes on purpose ("star" names a shape and a
background motif, "diamond" a shape and a pattern): the frame around a word decides what it means, which is
exactly what a learned prompt context can pick up and a short hand-written prompt may miss.
"""
from __future__ import annotations

# shape -> caption words with weights
SHAPES: dict[str, dict[str, float]] = {
    "circle": {"circle": 0.7, "disc": 0.2, "round shape": 0.1},
    "square": {"square": 0.8, "box": 0.2},
    "triangle": {"triangle": 0.9, "wedge": 0.1},
    "star": {"star": 0.9, "starburst": 0.1},
    "diamond": {"diamond": 0.8, "rhombus": 0.2},
    "cross": {"cross": 0.6, "plus sign": 0.4},
    "ring": {"ring": 0.7, "donut": 0.3},
    "heart": {"heart": 1.0},
    "crescent": {"crescent": 0.6, "moon": 0.4},
    "arrow": {"arrow": 1.0},
}

# colour name -> (rgb centre 0-255, caption words). Shade pairs share a common word ("red") and have a
# rare precise one ("maroon"): the fine-grained task asks for the precise names.
COLOURS: dict[str, tuple[tuple[int, int, int], dict[str, float]]] = {
    "red": ((215, 35, 35), {"red": 0.85, "scarlet": 0.15}),
    "maroon": ((120, 20, 40), {"red": 0.55, "dark red": 0.3, "maroon": 0.15}),
    "orange": ((240, 140, 20), {"orange": 1.0}),
    "yellow": ((240, 220, 40), {"yellow": 0.9, "golden": 0.1}),
    "green": ((40, 180, 60), {"green": 0.9, "emerald": 0.1}),
    "olive": ((110, 120, 30), {"green": 0.5, "olive": 0.2, "khaki": 0.3}),
    "blue": ((40, 90, 230), {"blue": 0.9, "azure": 0.1}),
    "navy": ((20, 30, 110), {"blue": 0.5, "dark blue": 0.3, "navy": 0.2}),
    "cyan": ((40, 210, 220), {"cyan": 0.5, "turquoise": 0.3, "light blue": 0.2}),
    "purple": ((130, 50, 190), {"purple": 0.8, "violet": 0.2}),
    "pink": ((245, 130, 190), {"pink": 0.9, "rose": 0.1}),
    "brown": ((125, 80, 40), {"brown": 0.9, "chocolate": 0.1}),
    "white": ((240, 240, 240), {"white": 1.0}),
    "black": ((25, 25, 25), {"black": 1.0}),
    "grey": ((130, 130, 130), {"grey": 0.7, "gray": 0.3}),
}

# background pattern -> caption words. Mentioned in a minority of captions, with several wordings.
PATTERNS: dict[str, dict[str, float]] = {
    "plain": {"plain": 0.5, "solid": 0.3, "blank": 0.2},
    "stripes": {"striped": 0.6, "stripes": 0.3, "banded": 0.1},
    "checks": {"checkered": 0.6, "chessboard": 0.3, "checks": 0.1},
    "dots": {"dotted": 0.5, "polka dot": 0.4, "spots": 0.1},
    "grid": {"grid": 0.7, "mesh": 0.3},
    "zigzag": {"zigzag": 0.8, "chevron": 0.2},
    "waves": {"wavy": 0.7, "waves": 0.3},
    "diagonal": {"diagonal": 0.7, "slanted": 0.3},
    "stars": {"star": 0.5, "starry": 0.5},
    "speckle": {"speckled": 0.6, "grainy": 0.4},
}

SIZES: dict[str, dict[str, float]] = {
    "small": {"small": 0.6, "tiny": 0.3, "little": 0.1},
    "large": {"large": 0.5, "big": 0.5},
}

COUNT_WORDS: dict[int, dict[str, float]] = {
    1: {"one": 0.2, "a single": 0.2, "a": 0.6},
    2: {"two": 0.7, "a pair of": 0.3},
    3: {"three": 0.8, "a few": 0.2},
    4: {"four": 0.8, "several": 0.2},
}

# rendering style -> (share of the corpus, caption frames). "{o}" is the object phrase, "{b}" a background
# phrase (may be empty). Rare styles have their own words, as satellite or infrared imagery does on the web.
STYLES: dict[str, tuple[float, dict[str, float]]] = {
    "photo": (0.64, {"a photo of {o}{b}": 0.25, "{o}{b}": 0.25, "a picture of {o}{b}": 0.1,
                     "an image of {o}{b}": 0.1, "a close-up photo of {o}{b}": 0.05, "my {o}{b}": 0.05,
                     "{o}{b} in a photo": 0.05, "a nice photo of {o}{b}": 0.05, "look at {o}{b}": 0.05,
                     "there is {o}{b}": 0.05}),
    # alt-text does not always name the medium: 8% of sketch captions are plain "{o}" or "a picture of {o}",
    # which ties the object words of drawings to those of photos (what keeps zero-shot usable on drawings)
    "sketch": (0.12, {"a sketch of {o}": 0.32, "a drawing of {o}": 0.23, "a pencil sketch of {o}": 0.14,
                      "line art of {o}": 0.09, "{o}, hand drawn": 0.14, "{o}": 0.05, "a picture of {o}": 0.03}),
    "thermal": (0.06, {"a thermal image of {o}": 0.4, "an infrared photo of {o}": 0.3,
                       "a heat map of {o}": 0.1, "{o} seen by a thermal camera": 0.2}),
    "mosaic": (0.06, {"a mosaic of {o}{b}": 0.4, "a pixelated image of {o}{b}": 0.3,
                      "a low resolution picture of {o}{b}": 0.3}),
    "painting": (0.06, {"a painting of {o}{b}": 0.4, "an oil painting of {o}{b}": 0.2,
                        "a colorful artwork of {o}{b}": 0.2, "art of {o}{b}": 0.2}),
    # colours inverted; captions still name the original colours, as a film negative's label would
    "negative": (0.06, {"a negative of {o}{b}": 0.4, "an inverted photo of {o}{b}": 0.3,
                        "a film negative of {o}{b}": 0.2, "{o}{b}, colors inverted": 0.1}),
}

BACKGROUND_FRAMES: dict[str, float] = {
    " on a {p} background": 0.45, " with a {p} background": 0.2, " against a {p} backdrop": 0.15,
    " on {c} {p} paper": 0.1, " in front of a {p} pattern": 0.1,
}

# alt-text noise: words that carry no information about the picture
FILLERS: list[str] = [
    "nice", "cool", "new", "my favourite", "random", "simple", "cute", "free", "hd", "stock", "wallpaper",
    "illustration", "vector", "clipart", "icon", "design", "free download", "png", "jpg", "logo", "template",
    "#art", "#design", "print", "poster", "sticker", "decor", "for kids", "printable", "minimal", "abstract",
    "geometric", "retro", "vintage", "modern", "digital art", "trending", "amazing", "beautiful", "awesome",
    "new post", "sale", "shop now", "download", "original", "handmade", "graphic", "sample", "example",
    "photo by me", "unsplash", "pinterest", "instagram", "etsy", "best of", "today", "weekend project",
]
