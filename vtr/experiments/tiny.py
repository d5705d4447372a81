"""The tiny profile's files, written offline on first use: tiny random-init checkpoint folders
(`vtr.tiny.save_checkpoint`), a small folder in each benchmark's official format
(`vtr.benchmarks.fixtures`), disjoint search and training questions, and the profile file naming
them with small sizes. Its numbers mean nothing (random weights) and are never published: it exists
so that every chapter runs on HuggingFace checkpoint folders and official benchmark files.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from ..paths import REPO

# Change when what is written changes: a new folder is written beside the old one.
VERSION = 1
MODELS = {"llava-1.5-tiny": "llava", "llava-next-tiny": "llava_next"}
LAYERS = 8
# Small enough for a test run, large enough that every code path runs (several batches, searches
# with more than one look, routers with more than one batch).
SIZES = {"val": 12, "val_extra": 12, "test": 8, "bo_iterations": 4, "speed_batch": 4, "speed_repeats": 1,
         "table_speed_repeats": 1, "table_speed_warmup": 1, "probe_questions": 8, "rank_questions": 8,
         "cls_questions": 8, "stage_questions": 8, "router_questions": 24, "router_seeds": [0],
         "efficiency_batch": 4, "prefill_repeats": 1, "decode_new_tokens": 2, "decode_repeats": 1,
         "growth_sizes": [32], "growth_repeats": 1, "generate_batch": 2, "generate_new_tokens": [2, 4],
         "generate_repeats": 1, "published_batch": 2, "published_repeats": 1, "published_warmup": 0,
         "published_hidden": 64}


def folder() -> Path:
    """Where the files are written: $VTR_TINY_DIR, else results/tiny/assets-v<VERSION>."""
    return Path(os.environ.get("VTR_TINY_DIR") or REPO / "results" / "tiny" / f"assets-v{VERSION}")


def profile_file() -> Path:
    """The tiny profile's YAML file, written with everything it names when missing (and written
    again when the sizes or models it lists changed)."""
    root = folder()
    path = root / "profile.yaml"
    if not (root / "benchmarks").is_dir():
        write(root)
    text = profile_text(root)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return path


BENCHMARKS = ("gqa", "mmbench", "mme", "pope", "scienceqa", "vqav2", "textvqa")


def profile_text(root: Path) -> str:
    """The profile file naming what `write` put under `root` (MMBench is its TSV file)."""
    lines = ["# The tiny profile (vtr.experiments.tiny): random weights, numbers never published.", "models:"]
    lines += [f"  {name}: {{path: models/{name}, dtype: float32, device: cpu, max_new_tokens: 4, "
              "batch_size: 8}"
              for name in MODELS]
    lines += ["benchmarks:"]
    for name in BENCHMARKS:
        tsv = sorted((root / "benchmarks" / name).glob("*.tsv"))
        lines.append(f"  {name}: "
                     f"{(tsv[0].relative_to(root) if tsv else Path('benchmarks') / name).as_posix()}")
    lines += ["search: {benchmark: pope, path: search/pope, seed: 0}",
              "train: {benchmark: pope, path: train/pope, seed: 0}", "sizes:"]
    lines += [f"  {k}: {v}" for k, v in SIZES.items()]
    return "\n".join(lines) + "\n"


def write(root: Path) -> None:
    """Write every file into a temporary folder, then move it into place (an interrupted write
    leaves no half profile)."""
    from ..benchmarks import fixtures as fx
    from ..tiny import save_checkpoint

    tmp = root.with_name(root.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    for name, arch in MODELS.items():
        save_checkpoint(arch, tmp / "models" / name, layers=LAYERS)
    writers = {"gqa": fx.write_gqa, "mmbench": fx.write_mmbench, "mme": fx.write_mme, "pope": fx.write_pope,
               "scienceqa": fx.write_scienceqa, "vqav2": fx.write_vqav2, "textvqa": fx.write_textvqa}
    for name in BENCHMARKS:
        (tmp / "benchmarks" / name).mkdir(parents=True)
        writers[name](tmp / "benchmarks" / name)
    # POPE questions with other ids (and as many as the searches and routers need)
    for role, first in (("search", 1001), ("train", 5001)):
        (tmp / role / "pope").mkdir(parents=True)
        fx.write_pope(tmp / role / "pope", repeat=2, first_id=first)
    (tmp / "profile.yaml").write_text(profile_text(tmp))
    shutil.rmtree(root, ignore_errors=True)
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp.rename(root)
