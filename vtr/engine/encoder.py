"""The policy's encoder step (`Policy.encoder_step`), on the projected image features before the
decoder.

Vision-tower hooks (installed only when the policy has an encoder step) read the feature layer's
attention input and its output, to offer CLS attention / CLS similarity / keys to the policy, and
the tower's input images (generate() may encode the images before the model's forward, which then
receives their features and no pixel_values). They read and never modify. The
captured tensors sit in a dict also exposed as `model._vtr_vision_capture` while `prune` is
active, so a `FeatureCache` that skips the tower can hand back what the tower gave for the same
images (`vtr.engine.memo`). The step's features are written into `inputs_embeds` by the decoder's
pre-hook; the tokens it drops are removed before layer 0. A policy may also ask for the call's
images re-encoded at another size (`resizer`: the tower and projector run again on resized
`pixel_values`, LLaVA only)."""
from __future__ import annotations

import inspect

import torch
import torch.nn.functional as F

from .. import scores as S
from .policy import EncoderView, UnsupportedInput


class VisionCapture(dict):
    """What the tower's feature layer received and gave in this forward ("attn", "attn_in", "out")."""

    def attention_pre_hook(self, module, args, kwargs):
        self["attn_in"] = kwargs.get("hidden_states", args[0] if args else None)
        self["attn"] = module

    def output_hook(self, module, args, output):
        self["out"] = output[0] if isinstance(output, tuple) else output

    def tower_pre_hook(self, module, args, kwargs):
        # the images the tower encodes: generate() may encode them before the model's own forward,
        # which then carries the features (mm_encoder_outputs) and no pixel_values
        self["pixels"] = kwargs.get("pixel_values", args[0] if args else None)


def resizer(model, adapter, pixels):
    """`EncoderView.resized_features` for this call: the call's images resized to a rows x cols patch
    grid, through the tower (position embeddings interpolated) and the projector again. Only LLaVA's
    input is one image tensor whose grid follows its size (LLaVA-NeXT's crops, Qwen2-VL's packed
    patches and InternVL's tiles are not); elsewhere the function refuses when called."""
    tower = getattr(getattr(model, "model", None), "vision_tower", None)
    if adapter.family != "llava":
        reason = f"{adapter.family}: only LLaVA's single image tensor can be resized before its tower"
    elif pixels is None:
        reason = "resizing needs the call's pixel_values (the model was called without them)"
    elif "interpolate_pos_encoding" not in inspect.signature(tower.forward).parameters:
        reason = f"{type(tower).__name__} cannot interpolate its position embeddings to another grid"
    else:
        reason = None

    def resized(rows: int, cols: int, mode: str) -> torch.Tensor:
        if reason:
            raise UnsupportedInput(f"cannot re-encode a resized image: {reason}")
        patch = model.config.vision_config.patch_size
        smooth = mode in ("bilinear", "bicubic")  # antialiased as an image library resizes down
        x = F.interpolate(pixels.float(), size=(rows * patch, cols * patch), mode=mode,
                          align_corners=False if smooth else None, antialias=smooth)
        out = model.model.get_image_features(
            pixel_values=x.to(pixels.dtype), vision_feature_layer=model.config.vision_feature_layer,
            vision_feature_select_strategy=model.config.vision_feature_select_strategy,
            interpolate_pos_encoding=True, return_dict=True)
        feats = out.pooler_output
        return torch.stack(list(feats)) if isinstance(feats, (list, tuple)) else feats
    return resized


def encoder_step(model, adapter, policy, cap: VisionCapture, embeds, vision, refusal, pixels=None):
    """(embeds, keep): the policy's encoder step on the images of this prefill (one per sample that
    has image positions; samples without any pass through), its features written into a copy of
    `inputs_embeds`, and the (B, T) positions it keeps (None: it changed nothing). `pixels`: the
    call's pixel_values, for a policy that re-encodes the images resized (else those the tower saw
    in this step, `VisionCapture.tower_pre_hook`)."""
    pixels = pixels if pixels is not None else cap.get("pixels")
    has = vision.any(1)
    if not bool(has.any()):  # no image in this forward (a text-only turn): nothing to reduce
        cap.clear()
        return embeds, None
    if "out" not in cap:
        raise UnsupportedInput("the encoder step needs the vision tower to run in this forward "
                               "(pass pixel_values)")
    out = cap["out"]
    n_vis = vision.sum(1)[has]
    strategy = getattr(model.config, "vision_feature_select_strategy", "default")
    has_cls = adapter.cls_token and strategy == "default"
    patches = out[:, 1:] if has_cls else out
    B = int(has.sum())
    if out.shape[0] != B or bool((n_vis != patches.shape[1]).any()):
        raise UnsupportedInput("encoder-side reduction needs exactly one image per sample with image "
                               "tokens, whose patch tokens are the image tokens (not LLaVA-NeXT crops or "
                               "several images)")
    feats = embeds[has][vision[has]].view(B, -1, embeds.shape[-1])
    attn_mod, attn_in = cap.get("attn"), cap.get("attn_in")
    keys = None
    cls_attention = None
    if attn_mod is not None:
        hd = attn_mod.head_dim
        k = attn_mod.k_proj(attn_in).view(B, attn_in.shape[1], -1, hd).transpose(1, 2)
        keys = k[:, :, 1:] if has_cls else k
        if has_cls:
            q_cls = attn_mod.q_proj(attn_in[:, 0]).view(B, -1, hd)

            def cls_attention():
                return S.cls_attention(q_cls, keys, attn_mod.scale)
    side = int(round(patches.shape[1] ** 0.5))
    grid = (side, side) if side * side == patches.shape[1] else None
    view = EncoderView(feats, patches, out[:, 0] if has_cls else None, keys, cls_attention, grid,
                       resizer(model, adapter, pixels))
    result = policy.encoder_step(view)
    cap.clear()  # the same dict object stays installed in the capture slot
    if result is None:
        return embeds, None
    if refusal:
        raise UnsupportedInput(f"cannot prune this input: {refusal}")
    new_feats, keep = result
    embeds = embeds.clone()
    embeds[vision] = new_feats.reshape(-1, embeds.shape[-1]).to(embeds.dtype)
    full_keep = torch.ones_like(vision)
    full_keep[vision] = keep.reshape(-1)
    return embeds, full_keep
