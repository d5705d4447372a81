"""Tiny random-initialised models of every supported architecture, with matching inputs.

These exercise the same code paths as llava-1.5 / llava-v1.6 / Qwen2-VL / InternVL checkpoints
(the real transformers classes, small configs), so the engine is tested on each family without
downloading weights. `make_inputs` builds a batch with left padding and differing prompts.
"""
from __future__ import annotations

import torch
from transformers import (CLIPVisionConfig, InternVLConfig, InternVLForConditionalGeneration, LlamaConfig,
                          LlavaConfig, LlavaForConditionalGeneration, LlavaNextConfig,
                          LlavaNextForConditionalGeneration, Qwen2Config, Qwen2VLConfig,
                          Qwen2VLForConditionalGeneration)

ARCHITECTURES = ("llava", "llava_next", "qwen2_vl", "internvl")
VOCAB = 128
IMAGE_TOKEN = 100
PAD = 0


def _llama(layers=4, hidden=64, vocab=VOCAB):
    return LlamaConfig(vocab_size=vocab, hidden_size=hidden, intermediate_size=2 * hidden,
                       num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                       max_position_embeddings=1024, pad_token_id=PAD, tie_word_embeddings=False)


def _clip(image=32, patch=8, hidden=32):
    return CLIPVisionConfig(hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=2,
                            num_attention_heads=2, image_size=image, patch_size=patch, projection_dim=hidden)


def build(arch: str, seed: int = 0, layers: int = 4):
    """A random-init model of `arch` in eval mode, SDPA attention, float32."""
    torch.manual_seed(seed)
    if arch == "llava":
        cfg = LlavaConfig(vision_config=_clip(), text_config=_llama(layers), image_token_index=IMAGE_TOKEN,
                          image_seq_length=16, vision_feature_layer=-1)
        model = LlavaForConditionalGeneration(cfg)
    elif arch == "llava_next":
        cfg = LlavaNextConfig(vision_config=_clip(), text_config=_llama(layers),
                              image_token_index=IMAGE_TOKEN, vision_feature_layer=-1, image_seq_length=16,
                              image_grid_pinpoints=[[32, 32], [32, 64], [64, 32]])
        model = LlavaNextForConditionalGeneration(cfg)
    elif arch == "qwen2_vl":
        text = dict(vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=layers,
                    num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                    bos_token_id=1, eos_token_id=2, pad_token_id=PAD,
                    rope_parameters={"rope_type": "default", "mrope_section": [2, 3, 3],
                                     "rope_theta": 10000.0})
        vision = dict(depth=2, embed_dim=32, hidden_size=64, num_heads=2, patch_size=8, spatial_merge_size=2,
                      temporal_patch_size=2, in_channels=3, mlp_ratio=2)
        cfg = Qwen2VLConfig(text_config=text, vision_config=vision, image_token_id=IMAGE_TOKEN,
                            video_token_id=IMAGE_TOKEN + 1, vision_start_token_id=IMAGE_TOKEN + 2,
                            vision_end_token_id=IMAGE_TOKEN + 3)
        model = Qwen2VLForConditionalGeneration(cfg)
    elif arch == "internvl":
        text = Qwen2Config(vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=layers,
                           num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024)
        vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                      image_size=[32, 32], patch_size=[4, 4])
        cfg = InternVLConfig(vision_config=vision, text_config=text, image_token_id=IMAGE_TOKEN,
                             downsample_ratio=0.5, vision_feature_layer=-1)
        model = InternVLForConditionalGeneration(cfg)
    else:
        raise ValueError(f"unknown architecture {arch!r}; expected one of {ARCHITECTURES}")
    model.config._attn_implementation = "sdpa"
    for m in model.modules():
        if hasattr(m, "config") and hasattr(m.config, "_attn_implementation"):
            m.config._attn_implementation = "sdpa"
    return model.eval()


def _pixels(arch: str, batch: int, gen: torch.Generator, size: int = 32) -> dict:
    if arch == "llava":
        return {"pixel_values": torch.randn(batch, 3, size, size, generator=gen)}
    if arch == "llava_next":
        # image 32x64 -> base crop + 2 tiles of 32x32 (anyres)
        return {"pixel_values": torch.randn(batch, 3, 3, 32, 32, generator=gen),
                "image_sizes": torch.tensor([[32, 64]] * batch)}
    if arch == "qwen2_vl":
        grid = torch.tensor([[1, 8, 8]] * batch)  # t, h, w patches -> 64 patches -> 16 tokens after 2x2 merge
        return {"pixel_values": torch.randn(batch * 64, 3 * 2 * 8 * 8, generator=gen), "image_grid_thw": grid}
    if arch == "internvl":
        return {"pixel_values": torch.randn(batch, 3, 32, 32, generator=gen)}
    raise ValueError(arch)


def _image_size(model) -> int:
    size = getattr(getattr(model.config, "vision_config", None), "image_size", 32)
    return size if isinstance(size, int) else 32


def n_image_tokens(model, arch: str) -> int:
    """Image tokens per sample, asked from the model itself (no hard-coded counts)."""
    gen = torch.Generator().manual_seed(0)
    px = _pixels(arch, 1, gen, _image_size(model))
    with torch.no_grad():
        feats = model.model.get_image_features(**px).pooler_output
    if isinstance(feats, (list, tuple)):
        return int(sum(f.shape[0] for f in feats))
    return int(feats.shape[0] * feats.shape[1]) if feats.ndim == 3 else int(feats.shape[0])


def make_inputs(model, arch: str, batch: int = 3, seed: int = 0, text_lengths=None) -> dict:
    """Left-padded batch: `<bos> [vision-start] <image>*N [vision-end] text...` with differing text
    lengths."""
    gen = torch.Generator().manual_seed(seed)
    n = n_image_tokens(model, arch)
    lengths = text_lengths or [3 + 2 * i for i in range(batch)]
    seqs = []
    for L in lengths:
        prefix = [1]
        img = [IMAGE_TOKEN] * n
        if arch == "qwen2_vl":
            img = [IMAGE_TOKEN + 2] + img + [IMAGE_TOKEN + 3]
        text = torch.randint(2, IMAGE_TOKEN, (L,), generator=gen).tolist()
        seqs.append(prefix + img + text)
    width = max(map(len, seqs))
    ids = torch.full((len(seqs), width), PAD, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, s in enumerate(seqs):
        ids[i, width - len(s):] = torch.tensor(s)
        mask[i, width - len(s):] = 1
    out = {"input_ids": ids, "attention_mask": mask}
    out.update(_pixels(arch, len(seqs), gen, _image_size(model)))
    if arch == "qwen2_vl":
        out["mm_token_type_ids"] = (ids == IMAGE_TOKEN).long()
    else:
        out["position_ids"] = (mask.cumsum(1) - 1).clamp_min(0)
    return out


def build_sized(image_size: int = 96, patch: int = 8, hidden: int = 512, layers: int = 8, seed: int = 0):
    """A random-init LLaVA of a realistic width (hidden 512, 8 layers, CLIP 256 wide): for speed
    measurements, where a tiny model's fixed per-call overheads would dominate."""
    torch.manual_seed(seed)
    vision = CLIPVisionConfig(hidden_size=256, intermediate_size=1024, num_hidden_layers=4,
                              num_attention_heads=4, image_size=image_size, patch_size=patch,
                              projection_dim=256)
    text = LlamaConfig(vocab_size=VOCAB, hidden_size=hidden, intermediate_size=4 * hidden,
                       num_hidden_layers=layers, num_attention_heads=8, num_key_value_heads=8,
                       max_position_embeddings=4096, pad_token_id=PAD, tie_word_embeddings=False)
    cfg = LlavaConfig(vision_config=vision, text_config=text, image_token_index=IMAGE_TOKEN,
                      image_seq_length=(image_size // patch) ** 2, vision_feature_layer=-1)
    model = LlavaForConditionalGeneration(cfg)
    model.set_attn_implementation("sdpa")
    return model.eval()


# ------------------------------------------------------------------ checkpoint folders
# A word-level vocabulary of exactly VOCAB ids: the words of the benchmark fixtures' prompts, the
# image placeholder at IMAGE_TOKEN, fillers elsewhere. Nothing is downloaded.
WORDS = ("USER ASSISTANT : ? . , Is there a in the image Answer question using single word or phrase "
         "yes no Yes No not snowboard person dog car bus cake").split()
CHAT_TEMPLATE = ("{% for m in messages %}{% if m['role'] == 'user' %}USER: {% for c in m['content'] %}"
                 "{% if c['type'] == 'image' %}<image>\n"
                 "{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}"
                 "{% endfor %} {% endif %}{% endfor %}{% if add_generation_prompt %}ASSISTANT:{% endif %}")
# The families whose processors transformers builds without torchvision. Qwen2-VL's and InternVL's
# processors hold a video processor that imports torchvision, which has no CPU build beside this
# torch on PyPI; the engine's tests run those families from `build` and `make_inputs` instead.
CHECKPOINT_ARCHITECTURES = ("llava", "llava_next")


def _tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": PAD, "<s>": 1, "</s>": 2, "<unk>": 3}
    for w in WORDS:
        vocab[w] = len(vocab)
    while len(vocab) < VOCAB:
        vocab["<image>" if len(vocab) == IMAGE_TOKEN else f"w{len(vocab)}"] = len(vocab)
    tk = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    tk.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=tk, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                   unk_token="<unk>", additional_special_tokens=["<image>"],
                                   padding_side="left")


def processor(arch: str = "llava", image_size: int = 32, patch: int = 8):
    """The processor of a `build(arch)` model, made offline: CLIP-style image processing at the tiny
    image size (LLaVA-NeXT: its AnyRes grid), the word-level tokenizer, a LLaVA-style chat template."""
    from transformers import LlavaNextProcessor, LlavaProcessor
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil
    from transformers.models.llava_next.image_processing_pil_llava_next import LlavaNextImageProcessorPil

    size = {"shortest_edge": image_size}
    crop = {"height": image_size, "width": image_size}
    common = dict(tokenizer=_tokenizer(), patch_size=patch, vision_feature_select_strategy="default",
                  num_additional_image_tokens=1, chat_template=CHAT_TEMPLATE)
    if arch == "llava":
        return LlavaProcessor(image_processor=CLIPImageProcessorPil(size=size, crop_size=crop), **common)
    if arch == "llava_next":
        grid = [[image_size, image_size], [image_size, 2 * image_size], [2 * image_size, image_size]]
        images = LlavaNextImageProcessorPil(size=size, crop_size=crop, image_grid_pinpoints=grid)
        return LlavaNextProcessor(image_processor=images, **common)
    raise ValueError(f"no offline processor for {arch!r}; expected one of {CHECKPOINT_ARCHITECTURES}")


def save_checkpoint(arch: str, folder, layers: int = 4, seed: int = 0):
    """A HuggingFace checkpoint folder of `build(arch)` and its processor (`save_pretrained`)."""
    model = build(arch, seed=seed, layers=layers)
    model.save_pretrained(folder)
    processor(arch).save_pretrained(folder)
    return folder
