"""Resumable state of a testbed training run, under `out/checkpoint/`.

The vision tower is saved after stage 0, and stages 1-2 every `Recipe.checkpoint_every` steps
(weights, optimiser, schedule, random states, log position, elapsed time); running the same recipe
again continues from there and ends with the same weights as an uninterrupted run. A saved tower is
also reused by a run that changes only what stage 0 does not depend on (`VISION_FIELDS`,
`VISION_SPEC_FIELDS`), and can be taken from another finished checkpoint (`--vision-from`).
"""
from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict
from pathlib import Path

import torch
from tqdm.auto import tqdm

from .model import TestbedSpec
from .recipe import Recipe

# Recipe and spec fields stage 0 depends on: a run that changes only later stages, or only the
# decoder's size, reuses a saved vision tower (stage 0 never sees the decoder).
VISION_FIELDS = ("seed", "threads", "vision_steps", "vision_batch", "vision_lr", "vision_norm")
VISION_SPEC_FIELDS = ("vision_hidden", "vision_layers", "vision_heads", "image_size", "patch_size")


def vision_identity(recipe: dict, spec: dict, torch_version: str) -> dict:
    """What a trained vision tower depends on: stage 0's recipe fields, the tower's sizes, torch."""
    return {"recipe": {k: recipe[k] for k in VISION_FIELDS}, "spec": {k: spec[k] for k in VISION_SPEC_FIELDS},
            "torch": torch_version}


def freeze_vision(model) -> None:
    """Stop training the vision tower, as LLaVA freezes CLIP after pretraining."""
    tower = model.model.vision_tower
    for p in tower.parameters():
        p.requires_grad_(False)
    tower.eval()


def save_vision(model, path: Path) -> None:
    from safetensors.torch import save_file
    save_file({k: v.contiguous() for k, v in model.model.vision_tower.state_dict().items()}, str(path))


def load_vision(model, path: Path) -> None:
    from safetensors.torch import load_file
    model.model.vision_tower.load_state_dict(load_file(str(path)))
    freeze_vision(model)


class Clock:
    """Seconds of training so far, carried over from a checkpoint on resume."""

    def __init__(self, elapsed: float = 0.0):
        self.t0 = time.time() - elapsed

    def __call__(self) -> float:
        return time.time() - self.t0


class Checkpoints:
    """Resumable state of one training run under `out/checkpoint/`, valid only for the same recipe and
    spec: another spec, torch or stage-0 setting starts afresh; other stage 1-3 settings keep the
    saved vision tower and restart stage 1. Files are written to a temporary name, then renamed."""

    def __init__(self, out: Path, recipe: Recipe, spec: TestbedSpec, log_path: Path):
        self.dir, self.log_path = out / "checkpoint", log_path
        full = asdict(recipe)
        self.identity = {"vision": vision_identity(full, asdict(spec), torch.__version__),
                         "recipe": full, "spec": asdict(spec)}
        self.clock = Clock()  # the log's clock, carried over on resume
        ident = self.dir / "identity.json"
        saved = json.loads(ident.read_text()) if ident.exists() else self.identity
        if saved.get("vision") != self.identity["vision"]:
            tqdm.write(f"{self.dir}: saved for another spec, torch or stage 0; starting afresh")
            self.clear()
        elif saved.get("recipe") != full or saved.get("spec") != asdict(spec):
            tqdm.write(f"{self.dir}: saved for other stage 1-3 settings or decoder sizes; "
                       "keeping the vision tower only")
            (self.dir / "language.pt").unlink(missing_ok=True)
        self.dir.mkdir(parents=True, exist_ok=True)
        ident.write_text(json.dumps(self.identity, indent=1))
        if not self.has_vision():
            log_path.write_text("")

    def clear(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    def _write(self, name: str, save) -> None:
        tmp = self.dir / (name + ".tmp")
        save(tmp)
        tmp.replace(self.dir / name)

    def _log_bytes(self) -> int:
        return self.log_path.stat().st_size if self.log_path.exists() else 0

    def _check_log(self, size: int) -> None:  # e.g. only checkpoint/ was copied to a new output folder
        if self._log_bytes() < size:
            raise ValueError(f"{self.dir} was saved with {size} bytes of {self.log_path.name}, but "
                             f"{self.log_path} has {self._log_bytes()}: copy the whole output folder "
                             f"(log and checkpoint/) to resume, or delete {self.dir} to start afresh")

    def _rewind_log(self, size: int) -> None:  # drop what was logged after the checkpoint
        with open(self.log_path, "r+b") as f:
            f.truncate(size)

    def has_vision(self) -> bool:
        return (self.dir / "vision.safetensors").exists()

    def save_vision(self, model, elapsed: float) -> None:
        self._write("vision.safetensors", lambda p: save_vision(model, p))
        meta = {"log_bytes": self._log_bytes(), "elapsed": elapsed}
        (self.dir / "vision.json").write_text(json.dumps(meta))

    def reuse_vision(self, source: Path) -> None:
        """Start from the vision tower of the finished checkpoint in `source` instead of running stage 0:
        its tower and its log's stage-0 records are written here as `save_vision` would have written
        them. Refused unless `source` was trained with the same stage-0 recipe, tower sizes and torch."""
        from safetensors.torch import load_file, save_file

        meta = json.loads((source / "training.json").read_text())
        theirs = vision_identity(meta["recipe"], meta["spec"], meta["torch"])
        if theirs != self.identity["vision"]:
            diff = sorted(f"{part}.{k}" for part in ("recipe", "spec") for k in theirs[part]
                          if theirs[part][k] != self.identity["vision"][part][k])
            if theirs["torch"] != self.identity["vision"]["torch"]:
                diff.append("torch")
            raise ValueError(f"--vision-from {source}: its stage 0 differs from this run's in "
                             f"{', '.join(diff)}")
        records = [line for line in (source / "training_log.jsonl").read_text().splitlines()
                   if json.loads(line)["stage"] == 0]
        self.log_path.write_text("".join(r + "\n" for r in records))
        prefix = "vision_tower."
        weights = load_file(str(source / "model.safetensors"))
        tower = {k[len(prefix):]: v.contiguous() for k, v in weights.items() if k.startswith(prefix)}
        self._write("vision.safetensors", lambda p: save_file(tower, str(p)))
        meta = {"log_bytes": self._log_bytes(), "elapsed": json.loads(records[-1])["seconds"],
                "from": str(source)}
        (self.dir / "vision.json").write_text(json.dumps(meta))

    def resume_vision(self, model) -> bool:
        if not self.has_vision():
            return False
        meta = json.loads((self.dir / "vision.json").read_text())
        self._check_log(meta["log_bytes"])
        load_vision(model, self.dir / "vision.safetensors")
        if not (self.dir / "language.pt").exists():
            self._rewind_log(meta["log_bytes"])
            self.clock = Clock(meta["elapsed"])
        tqdm.write(f"stage 0: vision tower from {self.dir}")
        return True

    def save_language(self, step: int, model, opt, sched, rng) -> None:
        state = {"step": step, "model": model.state_dict(), "opt": opt.state_dict(),
                 "sched": sched.state_dict(), "rng": rng.bit_generator.state,
                 "torch_rng": torch.get_rng_state(), "log_bytes": self._log_bytes(), "elapsed": self.clock()}
        self._write("language.pt", lambda p: torch.save(state, p))

    def resume_language(self, model, opt, sched, rng) -> int:
        path = self.dir / "language.pt"
        if not path.exists():
            return 0
        state = torch.load(path, weights_only=False)
        self._check_log(state["log_bytes"])
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        rng.bit_generator.state = state["rng"]
        torch.set_rng_state(state["torch_rng"])
        self._rewind_log(state["log_bytes"])
        self.clock = Clock(state["elapsed"])
        tqdm.write(f"stage 1-2: resumed at step {state['step']} from {path}")
        return state["step"]
