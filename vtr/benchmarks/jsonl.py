"""The on-disk layout every benchmark is converted to: `questions.jsonl` plus an `images/` folder.

One JSON object per line: {"id", "image" (path relative to the split folder), "question",
"answer" (a string, or a list of reference answers), "family" (task / sub-benchmark), ...}.
The testbed splits are written in this layout; the real-benchmark readers produce the same
`Sample` records from the official formats.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from PIL import Image

from ..errors import InputError


@dataclass
class Sample:
    id: str
    image: str  # path relative to the split folder (or absolute)
    question: str
    answer: str | list[str]
    family: str
    meta: dict = field(default_factory=dict)


class Split:
    """A materialised split: samples plus lazy image loading (images are shared between questions)."""

    def __init__(self, folder: Path | str, samples: list[Sample]):
        self.folder = Path(folder)
        self.samples = samples
        self._cache: dict[str, Image.Image] = {}
        self.limit: int | None = None  # the `subset` size this split was cut to (None: whole)

    def __len__(self) -> int:
        return len(self.samples)

    def image(self, sample: Sample) -> Image.Image:
        if sample.image not in self._cache:
            path = Path(sample.image)
            path = path if path.is_absolute() else self.folder / path
            with Image.open(path) as im:
                self._cache[sample.image] = im.convert("RGB")
        return self._cache[sample.image]

    def subset(self, n: int | None) -> "Split":
        if n is None:
            return self
        if n <= 0:
            raise InputError(f"limit must be a positive number of samples, got {n}")
        part = Split(self.folder, self.samples[:n])
        part._cache, part.limit = self._cache, n
        return part


def write_split(folder: Path, samples: list[Sample], images: dict[str, Image.Image]) -> None:
    (folder / "images").mkdir(parents=True, exist_ok=True)
    for rel, im in images.items():
        im.save(folder / rel, optimize=True)
    with open(folder / "questions.jsonl", "w") as f:
        for s in samples:
            f.write(json.dumps(asdict(s)) + "\n")


def read_split(folder: Path | str) -> Split:
    folder = Path(folder)
    path = folder / "questions.jsonl"
    if not path.exists():
        raise FileNotFoundError(f"no questions.jsonl in {folder}")
    samples = [Sample(**json.loads(line)) for line in path.read_text().splitlines() if line.strip()]
    return Split(folder, samples)
