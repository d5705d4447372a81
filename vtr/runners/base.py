"""What every runner offers: the one interface the evaluation loop, the searches, the analyses and
the timing benchmarks use, whatever the model.

A runner wraps a loaded model and knows how to turn a split's samples into model inputs and the
model's outputs into answers. The shipped testbeds use `vtr.testbed.runner.TestbedRunner`
(word-level prompts, answer = argmax of the next token); real checkpoints use
`vtr.runners.hf.HFRunner` (chat template, greedy generation). Nothing tells runners apart by name
or by probing attributes: what differs is a method or attribute of this class.
"""
from __future__ import annotations

import torch

from ..benchmarks.jsonl import Sample, Split


class Runner:
    """Base class of runners. Subclasses set `model`, `name` and implement `inputs`, `predict`,
    `n_vision`, `n_text` and `score`; the rest has defaults."""

    model: torch.nn.Module
    name: str                        # model name: a shipped testbed's (`vtr.paths.TESTBEDS`) or the
                                     # folder's
    benchmark: str | None = None     # the benchmark dataset whose official scorer `score` uses (None:
                                     # the testbed)
    batch_size: int = 64             # samples per forward in evaluations
    n_vision: int                    # vision tokens per sample (typical value for dynamic-resolution models)

    def inputs(self, samples: list[Sample], split: Split, blank: bool = False) -> dict:
        """Model inputs for `samples` (left-padded); `blank`: the same prompts with a blank image."""
        raise NotImplementedError

    def predict(self, inputs: dict) -> list[str]:
        """One answer string per sample."""
        raise NotImplementedError

    @torch.inference_mode()
    def logits(self, inputs: dict) -> torch.Tensor:
        """(B, vocabulary) next-token logits at each sample's last prompt position (one forward)."""
        return self.model(**inputs, use_cache=False, logits_to_keep=1).logits[:, -1]

    def answers_from_logits(self, logits: torch.Tensor) -> list[str] | None:
        """The answers `predict` gives for inputs whose `logits` these are, when an answer is decided by
        those logits alone (the testbed: their argmax word), so one forward serves both; None when
        answering takes more (greedy generation of several tokens)."""
        return None

    def n_text(self, split: Split) -> int:
        """Typical number of non-vision prompt tokens of `split` (for FLOPs budgets)."""
        raise NotImplementedError

    def score(self, samples: list[Sample], predictions: list[str]) -> dict:
        """The benchmark's metrics of `predictions`."""
        raise NotImplementedError

    def image_token_ids(self) -> list[int]:
        """The token ids that mark vision positions in `input_ids`."""
        raise NotImplementedError

    def answer_tokens(self, samples: list[Sample]) -> torch.Tensor:
        """(B,) the first token of each sample's reference answer (DyVTE's router labels)."""
        raise NotImplementedError

    # Whether single evaluations use `feature_cache()` too (a search always does: it evaluates the
    # same images many times). True for the testbed, whose book process evaluates many methods on the
    # same images; False for a real model, whose `vtr eval` sees each batch once (no memo on its GPU).
    shares_images: bool = False
    feature_bytes, feature_layers = 1 << 30, 0  # memo size and unpruned decoder layers it keeps
    prefix_bytes = 0  # memo of pruned decoder prefixes (0: none; see `vtr.engine.memo`)

    def feature_cache(self):
        """The image-feature memo of this runner (`vtr.engine.FeatureCache`), created on first use."""
        if getattr(self, "_features", None) is None:
            from ..engine import FeatureCache

            self._features = FeatureCache(max_bytes=self.feature_bytes, decoder_layers=self.feature_layers,
                                          prefix_bytes=self.prefix_bytes)
        return self._features
