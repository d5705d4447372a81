"""The pruning engine: `prune(model, policy)` runs any policy inside an unmodified transformers MLLM."""
from .adapters import ADAPTERS, Adapter, UnsupportedArchitecture, adapter_for
from .core import POSITION_MODES, prompt_marks, prune
from .memo import FeatureCache
from .policy import EncoderView, LayerView, PlanPolicy, Policy, UnsupportedInput

__all__ = ["ADAPTERS", "Adapter", "FeatureCache", "UnsupportedArchitecture", "adapter_for", "POSITION_MODES", "prompt_marks", "prune",
           "EncoderView", "LayerView", "PlanPolicy", "Policy", "UnsupportedInput"]
