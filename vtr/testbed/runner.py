"""The shipped testbeds' runner: word-level prompts `<bos> <image>*N question ? assistant:`, answer =
the argmax word of the next-token logits at the trigger (exact match, whole vocabulary)."""
from __future__ import annotations

import torch

from ..benchmarks.jsonl import Sample, Split
from ..runners.base import Runner
from . import scenes
from .model import WordTokenizer, batch_prompts, n_image_tokens, pixel_values
from .score import summarise


class TestbedRunner(Runner):
    """Runner of a shipped testbed checkpoint (`vtr.testbed.model.load_testbed`)."""

    shares_images = True
    # the book's process holds val and test of one testbed (the encoder captures and the first three
    # decoder layers of the unpruned runs): about 2.5 GB of the machine's 24
    feature_bytes, feature_layers = 4 << 30, 3
    # G-Search's probes at layer l share layers < l: up to 3 GB of those layers' outputs (a 16-layer
    # search on 2400 questions holds about 2)
    prefix_bytes = 3 << 30

    def __init__(self, model, name: str = "testbed"):
        self.model, self.tok = model, WordTokenizer()
        self.n_vision = n_image_tokens(model)  # from the checkpoint's config, not the scene module
        self.name = name  # the shipped testbed's name (`vtr.paths.TESTBEDS`)

    def inputs(self, samples: list[Sample], split: Split, blank: bool = False) -> dict:
        ids, mask = batch_prompts(self.tok, [s.question for s in samples], self.n_vision)
        imgs = [scenes.blank_image() if blank else split.image(s) for s in samples]
        pos = (mask.cumsum(1) - 1).clamp_min(0)
        return {"input_ids": ids, "attention_mask": mask, "position_ids": pos,
                "pixel_values": pixel_values(imgs)}

    def predict(self, inputs: dict) -> list[str]:
        return self.answers_from_logits(self.logits(inputs))

    def answers_from_logits(self, logits: torch.Tensor) -> list[str]:
        return [self.tok.vocab[i] for i in logits.argmax(-1).tolist()]

    def n_text(self, split: Split) -> int:
        """Typical number of non-vision prompt tokens (for FLOPs budgets)."""
        lens = [len(self.tok.encode(s.question)) + 3 for s in split.samples[:200]]
        return round(sum(lens) / max(1, len(lens)))

    def score(self, samples, predictions) -> dict:
        return summarise(samples, predictions)

    def image_token_ids(self) -> list[int]:
        return [self.tok.image_id]

    def answer_tokens(self, samples) -> torch.Tensor:
        return torch.tensor([self.tok.index[s.answer] for s in samples])  # every answer is one word
