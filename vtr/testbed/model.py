"""The testbed model: transformers' own `LlavaForConditionalGeneration`, small enough to train on CPU.

CLIP vision tower (96 px, patch 8 -> 144 patch tokens + CLS) -> 2-layer MLP projector -> Llama
decoder (8 layers). Nothing is forked: the same classes as llava-1.5-hf, with a small config and a
word-level tokenizer. `vision_feature_layer=-1` (the transformers default of -2 would leave the last
ViT layer untrained here) and the "default" strategy (CLS dropped), so there are exactly 144
image tokens per image.

Prompt template (single turn, what evaluation uses)::

    <bos> <image>*144 what colour is the circle ? assistant:   -> answer word, then <eos>

The constant trigger `assistant:` plays LLaVA's `ASSISTANT:`: the answer is predicted at a token
that carries no question content, so the model must route question and image information to it.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration

from . import scenes, tasks

SPECIALS = ("<pad>", "<unk>", "<bos>", "<eos>", "<image>")
TRIGGER = "assistant:"
QUESTION_WORDS = ("what", "colour", "is", "the", "how", "many", "there", "a", "where", "word",
                  "written", "which", "shape", "or", "?", TRIGGER)


def vocabulary() -> list[str]:
    """Token list; ids are positions. Fixed order so checkpoints stay valid."""
    answers = [a for fam in tasks.answer_space().values() for a in fam]
    words = list(QUESTION_WORDS) + list(scenes.COLOURS) + list(scenes.SHAPES) + answers
    return list(SPECIALS) + list(dict.fromkeys(w for w in words if w not in SPECIALS))


@dataclass
class TestbedSpec:
    """Sizes of the testbed model (plain dataclass; saved beside the checkpoint)."""
    vision_hidden: int = 192
    vision_layers: int = 4
    vision_heads: int = 6
    text_hidden: int = 128
    text_layers: int = 8
    text_heads: int = 4
    text_intermediate: int = 512
    image_size: int = scenes.IMAGE_SIZE
    patch_size: int = scenes.PATCH_SIZE


def build_config(spec: TestbedSpec | None = None) -> LlavaConfig:
    spec = spec or TestbedSpec()
    vocab = vocabulary()
    vision = CLIPVisionConfig(
        hidden_size=spec.vision_hidden, intermediate_size=4 * spec.vision_hidden,
        num_hidden_layers=spec.vision_layers, num_attention_heads=spec.vision_heads,
        image_size=spec.image_size, patch_size=spec.patch_size, projection_dim=spec.vision_hidden,
    )
    text = LlamaConfig(
        vocab_size=len(vocab), hidden_size=spec.text_hidden, intermediate_size=spec.text_intermediate,
        num_hidden_layers=spec.text_layers, num_attention_heads=spec.text_heads,
        num_key_value_heads=spec.text_heads, max_position_embeddings=512,
        pad_token_id=vocab.index("<pad>"), bos_token_id=vocab.index("<bos>"),
        eos_token_id=vocab.index("<eos>"),
        tie_word_embeddings=False,
    )
    n_img = (spec.image_size // spec.patch_size) ** 2
    cfg = LlavaConfig(
        vision_config=vision, text_config=text, image_token_index=vocab.index("<image>"),
        image_seq_length=n_img, vision_feature_layer=-1, vision_feature_select_strategy="default",
    )
    cfg.pad_token_id = text.pad_token_id
    return cfg


def build_model(spec: TestbedSpec | None = None, seed: int = 0) -> LlavaForConditionalGeneration:
    torch.manual_seed(seed)
    cfg = build_config(spec)
    cfg._attn_implementation = "sdpa"
    model = LlavaForConditionalGeneration(cfg)
    return model


class WordTokenizer:
    """Word-level tokenizer (whitespace split). Also saved as a HF `tokenizer.json` for interop."""

    def __init__(self, vocab: list[str] | None = None):
        self.vocab = vocab or vocabulary()
        self.index = {w: i for i, w in enumerate(self.vocab)}
        for name in ("pad", "unk", "bos", "eos", "image"):
            setattr(self, f"{name}_id", self.index[f"<{name}>"])
        self.trigger_id = self.index[TRIGGER]

    def encode(self, text: str) -> list[int]:
        ids = []
        for w in text.split():
            if w not in self.index:
                raise ValueError(f"word {w!r} is not in the testbed vocabulary")
            ids.append(self.index[w])
        return ids

    def decode(self, ids) -> str:
        return " ".join(self.vocab[int(i)] for i in ids)

    def save(self, folder: Path) -> None:
        from tokenizers import Tokenizer, models, pre_tokenizers
        from transformers import PreTrainedTokenizerFast

        tok = Tokenizer(models.WordLevel(vocab=self.index, unk_token="<unk>"))
        tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
        fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>",
                                       bos_token="<bos>", eos_token="<eos>")
        fast.save_pretrained(folder)


def prompt_ids(tok: WordTokenizer, question: str, n_image_tokens: int) -> list[int]:
    """`<bos> <image>*N question ? assistant:` as ids."""
    return [tok.bos_id] + [tok.image_id] * n_image_tokens + tok.encode(question + " ?") + [tok.trigger_id]


def pixel_values(images: list[Image.Image]) -> torch.Tensor:
    """RGB images -> CLIP-style normalised tensor (mean = std = 0.5, as in the saved processor)."""
    arr = np.stack([np.asarray(im.convert("RGB"), dtype=np.float32) for im in images]) / 255.0
    return torch.from_numpy((arr - 0.5) / 0.5).permute(0, 3, 1, 2).contiguous()


def n_image_tokens(model) -> int:
    """Image tokens per prompt of a testbed checkpoint: (image_size / patch_size)^2, from its config."""
    return int(model.config.image_seq_length)


def batch_prompts(tok: WordTokenizer, questions: list[str], n_image_tokens: int,
                  padding_side: str = "left") -> tuple[torch.Tensor, torch.Tensor]:
    """Padded input_ids and attention_mask for single-turn prompts."""
    seqs = [prompt_ids(tok, q, n_image_tokens) for q in questions]
    width = max(map(len, seqs))
    ids = torch.full((len(seqs), width), tok.pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        sl = slice(width - len(s), width) if padding_side == "left" else slice(0, len(s))
        ids[i, sl] = torch.tensor(s)
        mask[i, sl] = 1
    return ids, mask


def save_testbed(model, tok: WordTokenizer, spec: TestbedSpec, folder: Path,
                 extra: dict | None = None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder, safe_serialization=True)
    tok.save(folder)
    (folder / "testbed_spec.json").write_text(json.dumps(asdict(spec), indent=2) + "\n")
    if extra:
        (folder / "training.json").write_text(json.dumps(extra, indent=2) + "\n")


def load_testbed(folder: Path | str | None = None) -> tuple[LlavaForConditionalGeneration, WordTokenizer]:
    """The shipped testbed (default `data/testbed/model`), in eval mode with SDPA attention."""
    from ..paths import testbed_model_dir

    folder = Path(folder) if folder else testbed_model_dir()
    if not (folder / "model.safetensors").exists():
        raise FileNotFoundError(
            f"no testbed checkpoint in {folder} (expected model.safetensors); run `make testbed` to "
            "train one")
    model = LlavaForConditionalGeneration.from_pretrained(folder, attn_implementation="sdpa")
    model.eval()
    return model, WordTokenizer()
