"""Where each transformers architecture keeps what the engine needs. One small entry per family.

The engine only needs: the decoder (`language_model`, its `layers`, its `rotary_emb`), the
attention projections of a layer, the token id(s) that mark image positions, how position ids
are shaped (1-D RoPE, or Qwen2-VL's 3-D multimodal RoPE), and for encoder-side methods the
vision tower's feature layer and whether it has a CLS token. Nothing is forked or rewritten.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import InputError
from .policy import UnsupportedInput


class UnsupportedArchitecture(InputError):
    pass


@dataclass(frozen=True)
class Adapter:
    family: str
    mrope: bool = False          # position ids are (3, B, T) (Qwen2-VL / Qwen2.5-VL)
    cls_token: bool = True       # vision tower output starts with a CLS token

    # ------------------------------------------------------------------ decoder
    def language_model(self, model) -> torch.nn.Module:
        return model.model.language_model

    def layers(self, model):
        return self.language_model(model).layers

    def image_token_ids(self, model) -> list[int]:
        cfg = model.config
        ids = [getattr(cfg, name, None) for name in ("image_token_id", "image_token_index", "video_token_id")]
        ids = [int(i) for i in dict.fromkeys(ids) if i is not None]
        if not ids:
            raise UnsupportedArchitecture(f"{type(model).__name__}: no image token id in its config")
        return ids

    def text_config(self, model):
        return model.config.get_text_config()

    def rope_position_ids(self, pos: torch.Tensor) -> torch.Tensor:
        """(B, t) text positions -> what the decoder's rotary embedding expects."""
        return pos[None].expand(3, *pos.shape) if self.mrope else pos

    def base_positions(self, position_ids, batch: int, length: int, device) -> torch.Tensor:
        """The positions a prefill used, as (B, T) for 1-D RoPE or (3, B, T) for M-RoPE."""
        if position_ids is None:
            pos = torch.arange(length, device=device).expand(batch, length)
            return pos[None].expand(3, batch, length) if self.mrope else pos
        if self.mrope:
            if position_ids.ndim == 3 and position_ids.shape[0] == 4:  # text row prepended
                position_ids = position_ids[1:]
            if position_ids.ndim == 2:
                position_ids = position_ids[None].expand(3, *position_ids.shape)
            return position_ids.expand(3, batch, length)
        return position_ids.expand(batch, length)

    # ------------------------------------------------------------------ vision tower (encoder step)
    def vision_layers(self, model):
        tower = getattr(model.model, "vision_tower", None) or getattr(model.model, "visual", None)
        enc = getattr(getattr(tower, "vision_model", tower), "encoder", None)
        if enc is None or not hasattr(enc, "layers"):
            raise UnsupportedInput(f"{self.family}: encoder-side reduction is not supported for this vision "
                                   "tower")
        return enc.layers

    def feature_layer_index(self, model) -> int:
        """Index (into encoder.layers) of the layer whose output the projector reads."""
        fl = getattr(model.config, "vision_feature_layer", -1)
        if isinstance(fl, (list, tuple)):
            raise UnsupportedInput("encoder-side reduction needs a single vision_feature_layer")
        n = len(self.vision_layers(model))
        # hidden_states[0] is the embedding output, hidden_states[i] the output of layer i-1
        return (fl % (n + 1)) - 1


ADAPTERS = {
    "LlavaForConditionalGeneration": Adapter("llava"),
    "LlavaNextForConditionalGeneration": Adapter("llava_next"),
    "Qwen2VLForConditionalGeneration": Adapter("qwen2_vl", mrope=True, cls_token=False),
    "Qwen2_5_VLForConditionalGeneration": Adapter("qwen2_5_vl", mrope=True, cls_token=False),
    "InternVLForConditionalGeneration": Adapter("internvl", cls_token=False),
}


def adapter_for(model) -> Adapter:
    name = type(model).__name__
    if name not in ADAPTERS:
        raise UnsupportedArchitecture(
            f"unsupported architecture {name}; supported: {', '.join(sorted(ADAPTERS))}")
    return ADAPTERS[name]
