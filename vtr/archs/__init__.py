"""Published architectures with random weights: the papers' models for speed and memory, nothing to download.

Latency and memory do not depend on the weights' values, so a random-init model built from a
checkpoint's `config.json` runs exactly the computation the checkpoint would. Each
`vtr/archs/<name>.json` holds the configuration (values from the checkpoint's public config.json;
fields that could not be checked against it are listed under `unconfirmed`), the prompt image's
size (the processor's image-token count follows from it) and how many text tokens surround the
image (a benchmark-like prompt; vtr's assumption, not a checkpoint value).

`build(name, layers=N)` keeps the first N decoder layers (`vision_layers` likewise for the vision
tower), so that the same code path runs on a CPU in tests; `prompt(model, name, batch)` makes a
left-padded batch of such prompts with random token ids and pixels. Answers are meaningless.
"""
from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path

import torch

from ..errors import InputError

ROOT = Path(__file__).parent
PREFIX = "arch:"
RANDOM_WEIGHTS = "random (this architecture's shape only): speed and memory are measured, never answers"


class UnknownArchitecture(InputError):
    pass


def names() -> list[str]:
    return sorted(p.stem for p in ROOT.glob("*.json"))


@cache
def _read(name: str) -> dict:
    return json.loads((ROOT / f"{name}.json").read_text())


def spec(name: str) -> dict:
    """The shipped description of architecture `name` (a copy)."""
    if name not in names():
        raise UnknownArchitecture(f"--model {PREFIX}{name}: unknown architecture; known: "
                                  f"{', '.join(PREFIX + n for n in names())}")
    return copy.deepcopy(_read(name))


def _depth_key(vision: dict) -> str:
    return "depth" if "depth" in vision else "num_hidden_layers"


def config(name: str, layers: int | None = None, vision_layers: int | None = None):
    """The transformers config of `name`, decoder (and vision tower) cut to their first layers."""
    from transformers import AutoConfig

    cfg = spec(name)["config"]
    for part, n, key in (("text_config", layers, "num_hidden_layers"),
                         ("vision_config", vision_layers, _depth_key(cfg["vision_config"]))):
        if n is not None:
            full = cfg[part][key]
            if not 1 <= n <= full:
                option = "--layers" if part == "text_config" else "--vision-layers"
                raise InputError(f"{option} {n}: {name} has {full}; expected 1..{full}")
            cfg[part][key] = n
    return AutoConfig.for_model(cfg.pop("model_type"), **cfg)


def build(name: str, layers: int | None = None, vision_layers: int | None = None,
          dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu", seed: int = 0):
    """A random-init model of `name` in eval mode with SDPA attention, created on `device` in `dtype`."""
    import transformers

    cls = getattr(transformers, spec(name)["class"])
    cfg = config(name, layers, vision_layers)
    torch.manual_seed(seed)
    with torch.device(device):
        model = cls._from_config(cfg, dtype=dtype)
    model.set_attn_implementation("sdpa")
    return model.eval()


def _pixels(model, name: str, batch: int, gen: torch.Generator) -> dict:
    """Random pixels of the prompt image, shaped as the checkpoint's processor would give them."""
    s, cfg = spec(name), model.config
    h, w = s["image"]["height"], s["image"]["width"]
    dtype, device = model.dtype, next(model.parameters()).device

    def randn(*shape):
        return torch.randn(*shape, generator=gen).to(device=device, dtype=dtype)

    kind = cfg.model_type
    if kind == "llava":
        return {"pixel_values": randn(batch, 3, h, w)}
    if kind == "llava_next":
        from transformers.image_processing_utils import select_best_resolution

        side = cfg.vision_config.image_size
        bh, bw = select_best_resolution((h, w), cfg.image_grid_pinpoints)
        n_crops = 1 + (bh // side) * (bw // side)  # the base image and the tiles of the best grid
        return {"pixel_values": randn(batch, n_crops, 3, side, side),
                "image_sizes": torch.tensor([[h, w]] * batch, device=device)}
    if kind == "qwen2_vl":
        v = cfg.vision_config
        gh, gw = h // v.patch_size, w // v.patch_size
        per = v.in_channels * v.temporal_patch_size * v.patch_size ** 2
        return {"pixel_values": randn(batch * gh * gw, per),
                "image_grid_thw": torch.tensor([[1, gh, gw]] * batch, device=device)}
    if kind == "internvl":
        side = cfg.vision_config.image_size[0]
        tiles = (h // side) * (w // side) + (1 if (h, w) != (side, side) else 0)  # tiles and a thumbnail
        return {"pixel_values": randn(batch * tiles, 3, side, side)}
    raise ValueError(f"no prompt recipe for model type {kind!r}")


@torch.inference_mode()
def n_image_tokens(model, pixels: dict, batch: int) -> int:
    """Image tokens per sample, asked from the model itself (its vision tower and projector)."""
    feats = model.model.get_image_features(**pixels).pooler_output
    if isinstance(feats, (list, tuple)):
        return int(sum(f.shape[0] for f in feats)) // batch
    n = feats.shape[0] * feats.shape[1] if feats.ndim == 3 else feats.shape[0]
    return int(n) // batch


def prompt(model, name: str, batch: int = 1, seed: int = 0) -> tuple[dict, int]:
    """(inputs, vision tokens per sample): `batch` left-padded prompts of `name`'s recipe, questions
    differing in length (the last sample's is the recipe's, earlier ones up to 7 tokens shorter)."""
    s, cfg = spec(name), model.config
    gen = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device
    pixels = _pixels(model, name, batch, gen)
    n = n_image_tokens(model, pixels, batch)
    image_id = getattr(cfg, "image_token_id", None)
    image_id = image_id if image_id is not None else cfg.image_token_index
    qwen = cfg.model_type == "qwen2_vl"
    before, after = s["prompt"]["before_image"], s["prompt"]["after_image"]
    seqs = []
    for i in range(batch):
        text = torch.randint(1000, 30000, (before + after,), generator=gen).tolist()
        image = [image_id] * n
        if qwen:
            image = [cfg.vision_start_token_id] + image + [cfg.vision_end_token_id]
        q = after - (batch - 1 - i) % 8
        seqs.append(text[:before] + image + text[before:before + q])
    width = max(map(len, seqs))
    pad = getattr(cfg.get_text_config(), "pad_token_id", None) or getattr(cfg, "pad_token_id", None) or 0
    ids = torch.full((batch, width), pad, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, seq in enumerate(seqs):
        ids[i, width - len(seq):] = torch.tensor(seq)
        mask[i, width - len(seq):] = 1
    out = {"input_ids": ids.to(device), "attention_mask": mask.to(device), **pixels}
    if qwen:
        out["mm_token_type_ids"] = (ids == image_id).long().to(device)
    else:
        out["position_ids"] = (mask.cumsum(1) - 1).clamp_min(0).to(device)
    return out, n


def describe(model, name: str, n_vision: int) -> dict:
    """What a JSON result says about the model it measured."""
    s, text = spec(name), model.config.get_text_config()
    vision = s["config"]["vision_config"]
    return {"model": PREFIX + name, "checkpoint": s["checkpoint"], "weights": RANDOM_WEIGHTS,
            "hidden_size": text.hidden_size, "n_layers": text.num_hidden_layers,
            "n_layers_checkpoint": s["config"]["text_config"]["num_hidden_layers"],
            "vision_layers": getattr(model.config.vision_config, _depth_key(vision)),
            "vision_layers_checkpoint": vision[_depth_key(vision)],
            "n_vision": n_vision, "image": s["image"], "dtype": str(model.dtype).removeprefix("torch."),
            "unconfirmed_config_values": s["unconfirmed"]}
