"""Image downsampling: the vision tower sees a smaller image and so yields fewer tokens.

Paper: no single paper; benchmark studies of token reduction compare against feeding a
lower-resolution image, the reduction that needs no scoring at all: resize the image so that the
tower's patch grid has the budget's token count (e.g. 96 px with 8 px patches gives 12 x 12 = 144
tokens; 48 px gives 6 x 6 = 36, a quarter).
Here: the call's `pixel_values` (already normalised; per-channel normalisation is affine, so it
commutes with interpolation, up to an 8-bit image's clamping and rounding) are resized with
`torch.nn.functional.interpolate` (`resample`: bicubic by default, as CLIP's processor; bilinear
and bicubic antialiased as an image library does when shrinking; or area) to r x c patches, and
the tower runs on them with `interpolate_pos_encoding=True` (HF CLIP and SigLIP interpolate their
position embeddings bicubically), then the projector (`EncoderView.resized_features`).
Grid for a count k: the largest r x c <= k with c in {r, r + 1} (`pool.grid_for`: 36 -> 6 x 6,
72 -> 8 x 9, 18 -> 4 x 4, so at most one column of aspect change and never above the budget).
The r c new tokens occupy the slots of the original patches holding their cells' centres
(`pool.grid_slots`) and keep those position ids; the decoder sees no other image token.
Deviations from a real low-resolution input: the prompt keeps its original positions (the text
after the image is not moved up), and the engine has already run the tower on the full image (the
model's own forward), so a prefill timing counts both encodings. Budget: the count of
`encoder_count` (round(b N), or the largest fitting FLOPs), then its grid; without a budget a
quarter of the tokens. Only LLaVA (one image tensor whose patch grid follows its size, CLIP or
SigLIP tower) can be resized; LLaVA-NeXT, Qwen2-VL and InternVL are refused in one line
(`UnsupportedInput`).
"""
from __future__ import annotations

import torch

from ..engine.policy import EncoderView
from .base import ModelInfo, check_choice, register
from .encoder import EncoderPolicy, encoder_plan
from .pool import grid_count, grid_for, grid_of, place

RESAMPLE = ("bicubic", "bilinear", "area")


class DownsamplePolicy(EncoderPolicy):
    def __init__(self, count: int, n_plan: int, resample: str = "bicubic", plan=None):
        check_choice("downsample", "resample", resample, RESAMPLE)
        super().__init__(count, n_plan, plan)
        self.resample = resample

    def reduce(self, view: EncoderView, k: int | None):
        rows, cols = grid_of(view, "downsample")
        r, c = grid_for(k, rows, cols)
        if (r, c) == (rows, cols):  # the full grid: the tower's own output
            return view.features, torch.ones(view.features.shape[:2], dtype=torch.bool,
                                              device=view.features.device)
        return place(view, view.resized_features(r, c, self.resample), r, c)


@register("downsample")
def make(info: ModelInfo, budget: float | None = None, kind: str = "keep",
         resample: str = "bicubic") -> DownsamplePolicy:
    """The image resized to the largest near-square patch grid the budget allows."""
    check_choice("downsample", "resample", resample, RESAMPLE)
    count = grid_count(info, budget, kind)
    return DownsamplePolicy(count, info.n_vision, resample, encoder_plan(info, count))
