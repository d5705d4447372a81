"""Real checkpoints: load a local HuggingFace folder and evaluate it like the testbed.

`load_runner(path)` opens a checkpoint folder offline (`local_files_only=True`: nothing is
downloaded) with `AutoProcessor` and the `*ForConditionalGeneration` class named in its
`config.json` (`architectures`), with SDPA attention. Supported: LLaVA-1.5 (`llava-hf/...`),
LLaVA-NeXT, Qwen2-VL, Qwen2.5-VL and InternVL in the HF-native format (`OpenGVLab/...-hf`); the
original LLaVA / InternVL repositories (custom code) are not, use their `-hf` conversions.

`HFRunner` is the runner `vtr.evaluation.evaluate` drives: prompts are built with the processor's
chat template (one user turn: the image, then the question text, which already carries the
benchmark's instruction suffix), batches are left-padded, answers are greedy `generate()` output
(new tokens only, decoded and stripped), and `score` is the benchmark's official scorer. It runs
under `vtr.engine.prune(model, policy)`: the engine prunes at prefill and `generate()` decodes on
the pruned cache.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import torch

from ..engine.adapters import ADAPTERS, UnsupportedArchitecture
from .base import Runner

DTYPES = {"auto": "auto", "float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
WEIGHT_PATTERNS = ("*.safetensors", "*.bin")
# HF architecture names of checkpoints that need custom code, with the format to convert them to.
_HINTS = {
    "LlavaLlamaForCausalLM": "the original LLaVA repository format; use the HF conversion "
                             "(llava-hf/llava-1.5-7b-hf)",
    "InternVLChatModel": "InternVL's remote-code format; use the HF-native conversion (e.g. "
                         "OpenGVLab/InternVL3-8B-hf)",
}


def _device(device: str | None) -> str:
    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    if not re.fullmatch(r"cpu|cuda(:\d+)?", device):
        raise ValueError(f"device {device!r}: expected 'cpu', 'cuda' or 'cuda:N'")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r}: CUDA is not available in this environment")
    return device


def architecture(path: Path | str) -> str:
    """The model class named in `path/config.json`; UnsupportedArchitecture unless the engine has an
    adapter for it, FileNotFoundError when there is no config.json."""
    cfg_path = Path(path) / "config.json"
    if not cfg_path.exists():
        raise FileNotFoundError(f"{path}: no config.json; expected a local HuggingFace checkpoint folder "
                                f"(config.json, weights *.safetensors or *.bin, processor files)")
    archs = json.loads(cfg_path.read_text()).get("architectures") or []
    for name in archs:
        if name in ADAPTERS:
            return name
    hint = "".join(f" ({_HINTS[a]})" for a in archs if a in _HINTS)
    raise UnsupportedArchitecture(f"{path}: architectures {archs} not supported{hint}; "
                                  f"supported: {', '.join(sorted(ADAPTERS))}")


def check_weights(path: Path | str) -> list[Path]:
    """The weight files of the checkpoint; FileNotFoundError naming the folder when there are none."""
    path = Path(path)
    files = sorted(f for pattern in WEIGHT_PATTERNS for f in path.glob(pattern))
    if not files:
        raise FileNotFoundError(
            f"{path}: no model weights; expected *.safetensors (or *.bin) files next to config.json "
            f"(download the full checkpoint, e.g. `hf download <repo> --local-dir {path}`)")
    return files


def load_runner(path: Path | str, dtype: str = "auto", device: str | None = None, *,
                benchmark: str | None = None, max_new_tokens: int = 128, batch_size: int = 16) -> "HFRunner":
    """Load the checkpoint folder `path` offline -> HFRunner.

    dtype: "auto" (the checkpoint's own), "float32", "bfloat16" or "float16".
    device: "cpu", "cuda" or "cuda:N" (default: "cuda" when available, else "cpu").
    benchmark: benchmark name whose official scorer `score` uses (may be set later: `runner.benchmark = ...`).
    """
    import transformers
    from transformers import AutoProcessor

    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: not a folder; expected a local HuggingFace checkpoint folder")
    if dtype not in DTYPES:
        raise ValueError(f"dtype {dtype!r}: expected one of {', '.join(DTYPES)}")
    device = _device(device)
    cls = getattr(transformers, architecture(path))
    check_weights(path)
    processor = AutoProcessor.from_pretrained(path, local_files_only=True)
    model = cls.from_pretrained(path, dtype=DTYPES[dtype], attn_implementation="sdpa", local_files_only=True)
    model = model.to(device).eval()
    return HFRunner(model, processor, name=path.resolve().name, benchmark=benchmark,
                    max_new_tokens=max_new_tokens, batch_size=batch_size)


class HFRunner(Runner):
    """Runner for a HuggingFace MLLM + processor (see the module docstring)."""

    def __init__(self, model, processor, name: str = "hf", benchmark: str | None = None,
                 max_new_tokens: int = 128, batch_size: int = 16, n_vision: int | None = None):
        self.model, self.processor, self.name, self.benchmark = model, processor, name, benchmark
        self.max_new_tokens, self.batch_size = max_new_tokens, batch_size
        self.tokenizer = getattr(processor, "tokenizer", processor)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.image_token_id = self._image_token_id()
        self._n_vision = n_vision
        self.last_vision_counts: list[int] = []

    # ------------------------------------------------------------------ tokens
    def _image_token_id(self) -> int:
        tid = getattr(self.processor, "image_token_id", None)
        if tid is None and getattr(self.processor, "image_token", None):
            tid = self.tokenizer.convert_tokens_to_ids(self.processor.image_token)
        if tid is None:
            cfg = self.model.config
            tid = getattr(cfg, "image_token_id", None) or getattr(cfg, "image_token_index", None)
        if tid is None:
            raise UnsupportedArchitecture(f"{self.name}: cannot tell the image token id (processor and "
                                          "config)")
        return int(tid)

    def prompt(self, question: str) -> str:
        """The chat-template prompt of one question: a user turn holding the image and the text."""
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}]
        return self.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)

    # ------------------------------------------------------------------ runner interface
    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def _blank(self, image):
        from PIL import Image

        image_processor = getattr(self.processor, "image_processor", None)
        mean = getattr(image_processor, "image_mean", None) or [0.5, 0.5, 0.5]
        return Image.new("RGB", image.size, tuple(round(255 * m) for m in mean[:3]))

    def encode(self, questions: list[str], images: list) -> dict:
        enc = self.processor(images=images, text=[self.prompt(q) for q in questions], padding=True,
                             return_tensors="pt")
        dtype = self.model.dtype
        out = {k: (v.to(self.device, dtype) if v.is_floating_point() else v.to(self.device))
               for k, v in enc.items() if isinstance(v, torch.Tensor)}
        self.last_vision_counts = (out["input_ids"] == self.image_token_id).sum(1).tolist()
        return out

    def inputs(self, samples, split, blank: bool = False) -> dict:
        """Processor output for `samples` (left-padded), on the model's device; pixel values in its dtype."""
        images = [split.image(s) for s in samples]
        if blank:
            images = [self._blank(im) for im in images]
        return self.encode([s.question for s in samples], images)

    def generation_kwargs(self) -> dict:
        gc = self.model.generation_config
        eos = gc.eos_token_id if gc.eos_token_id is not None else self.tokenizer.eos_token_id
        # the image placeholder never appears in an answer; a generated one would be read as an image slot
        return {"max_new_tokens": self.max_new_tokens, "do_sample": False, "num_beams": 1,
                "temperature": None, "top_p": None, "top_k": None, "eos_token_id": eos,
                "pad_token_id": self.tokenizer.pad_token_id, "suppress_tokens": [self.image_token_id]}

    @torch.inference_mode()
    def predict(self, inputs: dict) -> list[str]:
        """Greedy answers: the new tokens of `generate()`, decoded without special tokens, stripped."""
        out = self.model.generate(**inputs, **self.generation_kwargs())
        new = out[:, inputs["input_ids"].shape[1]:]
        return [t.strip() for t in self.tokenizer.batch_decode(new, skip_special_tokens=True)]

    @property
    def n_vision(self) -> int:
        """Image tokens per sample, counted in the processed input_ids of a probe image of the
        processor's nominal size (exact for fixed-resolution models: LLaVA-1.5, InternVL single tile;
        a typical value for dynamic-resolution ones, whose per-sample counts the engine records)."""
        if self._n_vision is None:
            from PIL import Image

            side = self._nominal_side()
            self.encode(["probe"], [Image.new("RGB", (side, side), (128, 128, 128))])
            self._n_vision = int(self.last_vision_counts[0])
        return self._n_vision

    def _nominal_side(self) -> int:
        ip = getattr(self.processor, "image_processor", None)
        for attr in ("crop_size", "size"):
            size = getattr(ip, attr, None)
            if isinstance(size, int):
                return size
            if size is None:
                continue
            size = dict(size)
            if size.get("height"):
                return int(size["height"])
            edge = size.get("shortest_edge")
            if edge and edge <= 2048:  # Qwen2-VL stores pixel counts under these keys
                return int(edge)
        return 336

    def n_text(self, split) -> int:
        """Mean non-vision prompt tokens (template + question) over the first 200 samples."""
        counts = []
        for s in split.samples[:200]:
            ids = self.tokenizer(self.prompt(s.question))["input_ids"]
            counts.append(sum(1 for i in ids if i != self.image_token_id))
        return round(sum(counts) / max(1, len(counts)))

    def image_token_ids(self) -> list[int]:
        return [self.image_token_id]

    def answer_tokens(self, samples) -> torch.Tensor:
        """The first token of each reference answer as the tokenizer encodes it alone (a list of
        references, as VQA keeps: the most frequent one)."""
        out = []
        for s in samples:
            answer = s.answer if isinstance(s.answer, str) else max(set(s.answer), key=list(s.answer).count)
            ids = (self.tokenizer(str(answer), add_special_tokens=False)["input_ids"]
                   or [self.tokenizer.eos_token_id])
            out.append(ids[0])
        return torch.tensor(out, device=self.device)

    def score(self, samples, predictions) -> dict:
        """The official metric of `self.benchmark` (`vtr.benchmarks.get_scorer`)."""
        if self.benchmark is None:
            raise ValueError(f"runner {self.name}: set `benchmark` (the benchmark name) to score its "
                             "predictions")
        from ..benchmarks import get_scorer

        return get_scorer(self.benchmark)(samples, predictions)
