"""Procedural scenes for the testbed: coloured shapes plus one rendered word, with dense labels.

A scene is a 96x96 RGB image on a 4x4 grid of 24-pixel cells. Each object sits in its own cell
(jittered by a few pixels), so objects never overlap and each lies in exactly one quadrant; the
word occupies two horizontally adjacent cells. With 8-pixel patches the image is 12x12 = 144
vision tokens, so an 87.5% reduction still leaves 18.

`Scene` carries everything a question needs (the symbolic truth), and `patch_labels` gives the
per-patch targets the vision tower is pretrained on, standing in for CLIP's pretraining: the
generator knows what every pixel is, so no external data are needed.

Everything is a pure function of a `numpy.random.Generator`, so a seed fixes the scene.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

IMAGE_SIZE = 96
PATCH_SIZE = 8
GRID = IMAGE_SIZE // PATCH_SIZE  # 12 patches per side
CELL = 24  # 4x4 cells of 24 px
CELLS_PER_SIDE = IMAGE_SIZE // CELL

COLOURS = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 220),
    "yellow": (230, 200, 30),
    "purple": (150, 60, 190),
    "orange": (240, 130, 20),
}
SHAPES = ("circle", "square", "triangle", "diamond")
SIZES = {"small": 11, "large": 19}  # bounding-box side in pixels
WORDS = ("star", "moon", "tree", "fish", "bird", "lamp", "ship", "rock", "leaf", "door")
QUADRANTS = ("top-left", "top-right", "bottom-left", "bottom-right")
BACKGROUND = (245, 245, 240)


@dataclass(frozen=True)
class SceneObject:
    colour: str
    shape: str
    size: str
    cx: int  # centre, pixels
    cy: int

    @property
    def quadrant(self) -> str:
        top = self.cy < IMAGE_SIZE // 2
        left = self.cx < IMAGE_SIZE // 2
        return QUADRANTS[(0 if top else 2) + (0 if left else 1)]


@dataclass(frozen=True)
class Scene:
    objects: tuple[SceneObject, ...]
    word: str
    word_box: tuple[int, int, int, int]  # x0, y0, x1, y1 of the rendered text
    meta: dict = field(default_factory=dict, compare=False)


def sample_scene(rng: np.random.Generator, n_objects: int) -> Scene:
    """Draw a scene with `n_objects` objects (1..10) and one word."""
    if not 1 <= n_objects <= CELLS_PER_SIDE**2 - 2:
        raise ValueError(f"n_objects must be in 1..{CELLS_PER_SIDE**2 - 2}, got {n_objects}")
    # The word takes a pair of horizontally adjacent cells.
    wr, wc = int(rng.integers(CELLS_PER_SIDE)), int(rng.integers(CELLS_PER_SIDE - 1))
    word_cells = {(wr, wc), (wr, wc + 1)}
    free = [(r, c) for r in range(CELLS_PER_SIDE) for c in range(CELLS_PER_SIDE) if (r, c) not in word_cells]
    chosen = rng.choice(len(free), size=n_objects, replace=False)
    colours, shapes, sizes = list(COLOURS), list(SHAPES), list(SIZES)
    objects = []
    for i in chosen:
        r, c = free[int(i)]
        size = sizes[int(rng.integers(len(sizes)))]
        slack = (CELL - SIZES[size]) // 2 - 1
        jx, jy = (int(v) for v in rng.integers(-slack, slack + 1, size=2))
        objects.append(SceneObject(
            colour=colours[int(rng.integers(len(colours)))],
            shape=shapes[int(rng.integers(len(shapes)))],
            size=size,
            cx=c * CELL + CELL // 2 + jx,
            cy=r * CELL + CELL // 2 + jy,
        ))
    word = WORDS[int(rng.integers(len(WORDS)))]
    x0, y0 = wc * CELL + int(rng.integers(0, 7)), wr * CELL + int(rng.integers(2, 8))
    bbox = _font().getbbox(word)
    box = (x0, y0, x0 + bbox[2], y0 + bbox[3])
    return Scene(objects=tuple(objects), word=word, word_box=box)


@lru_cache(maxsize=1)
def _font() -> ImageFont.FreeTypeFont:
    # Pillow's bundled FreeType font: identical on every machine with this Pillow pin.
    return ImageFont.load_default(size=13)


def _draw_object(draw: ImageDraw.ImageDraw, obj: SceneObject, fill) -> None:
    h = SIZES[obj.size] / 2
    x, y = obj.cx, obj.cy
    if obj.shape == "circle":
        draw.ellipse((x - h, y - h, x + h, y + h), fill=fill)
    elif obj.shape == "square":
        draw.rectangle((x - h, y - h, x + h, y + h), fill=fill)
    elif obj.shape == "triangle":
        draw.polygon([(x, y - h), (x + h, y + h), (x - h, y + h)], fill=fill)
    elif obj.shape == "diamond":
        draw.polygon([(x, y - h), (x + h, y), (x, y + h), (x - h, y)], fill=fill)
    else:  # pragma: no cover - guarded by SHAPES
        raise ValueError(f"unknown shape {obj.shape!r}")


def render(scene: Scene) -> Image.Image:
    """The RGB image of a scene."""
    img = Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), BACKGROUND)
    draw = ImageDraw.Draw(img)
    for obj in scene.objects:
        _draw_object(draw, obj, COLOURS[obj.colour])
    draw.text(scene.word_box[:2], scene.word, fill=(20, 20, 20), font=_font())
    return img


def blank_image() -> Image.Image:
    """The control image: background only."""
    return Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), BACKGROUND)


def _coverage(mask: Image.Image) -> np.ndarray:
    a = np.asarray(mask, dtype=np.float32) / 255.0
    return a.reshape(GRID, PATCH_SIZE, GRID, PATCH_SIZE).mean(axis=(1, 3))


# Dense per-patch targets for the vision-tower pretraining (index 0 = background / none).
LABEL_SPACES = {
    "colour": 1 + len(COLOURS),
    "shape": 1 + len(SHAPES),
    "size": 1 + len(SIZES),
    "word": 1 + len(WORDS),
    "centre": 2,
    "row": GRID,
    "col": GRID,
}


def box_patches(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    """(GRID*GRID,) bool: the patches (row-major) that a pixel box [x0, x1) x [y0, y1) touches."""
    m = np.zeros((GRID, GRID), dtype=bool)
    r0, c0 = max(0, int(y0)) // PATCH_SIZE, max(0, int(x0)) // PATCH_SIZE
    r1, c1 = -(-int(np.ceil(y1)) // PATCH_SIZE), -(-int(np.ceil(x1)) // PATCH_SIZE)  # ceil: exclusive end
    m[r0:r1, c0:c1] = True
    return m.ravel()


def object_patches(obj: SceneObject) -> np.ndarray:
    """(GRID*GRID,) bool: the patches an object's bounding box touches."""
    h = SIZES[obj.size] / 2
    return box_patches(obj.cx - h, obj.cy - h, obj.cx + h + 1, obj.cy + h + 1)


def patch_labels(scene: Scene) -> dict[str, np.ndarray]:
    """Per-patch integer labels, each (GRID*GRID,), row-major like the vision tokens.

    A patch takes the attributes of the object covering the largest part of it (if >= 20%),
    `word` marks patches the text touches, `centre` the patch holding an object's centre, and
    `row`/`col` the patch's own grid position (keeps position information in the last layer).
    """
    n = GRID * GRID
    out = {k: np.zeros(n, dtype=np.int64) for k in ("colour", "shape", "size", "word", "centre")}
    best = np.zeros(n, dtype=np.float32)
    colour_ix = {c: i + 1 for i, c in enumerate(COLOURS)}
    for obj in scene.objects:
        mask = Image.new("L", (IMAGE_SIZE, IMAGE_SIZE), 0)
        _draw_object(ImageDraw.Draw(mask), obj, 255)
        cov = _coverage(mask).reshape(-1)
        take = (cov >= 0.2) & (cov > best)
        best = np.where(take, cov, best)
        out["colour"][take] = colour_ix[obj.colour]
        out["shape"][take] = SHAPES.index(obj.shape) + 1
        out["size"][take] = list(SIZES).index(obj.size) + 1
        out["centre"][(obj.cy // PATCH_SIZE) * GRID + obj.cx // PATCH_SIZE] = 1
    x0, y0, x1, y1 = scene.word_box
    text = np.zeros((GRID, GRID), dtype=bool)
    text[y0 // PATCH_SIZE:(y1 - 1) // PATCH_SIZE + 1, x0 // PATCH_SIZE:(x1 - 1) // PATCH_SIZE + 1] = True
    out["word"][text.reshape(-1)] = WORDS.index(scene.word) + 1
    out["row"] = np.repeat(np.arange(GRID), GRID)
    out["col"] = np.tile(np.arange(GRID), GRID)
    return out


def scene_summary_labels(scene: Scene) -> np.ndarray:
    """Multi-hot global target for the CLS token: which (colour, shape) pairs and which word occur."""
    v = np.zeros(len(COLOURS) * len(SHAPES) + len(WORDS), dtype=np.float32)
    for obj in scene.objects:
        v[list(COLOURS).index(obj.colour) * len(SHAPES) + SHAPES.index(obj.shape)] = 1.0
    v[len(COLOURS) * len(SHAPES) + WORDS.index(scene.word)] = 1.0
    return v
