"""Runners: a loaded model plus how to prompt it and read its answers (`Runner`), for real
HuggingFace checkpoints (`hf.HFRunner`, `hf.load_runner`); the testbed's runner lives with the
testbed (`vtr.testbed.runner`). Load any of them by name with `vtr.models.load`."""
from .base import Runner

__all__ = ["Runner"]
