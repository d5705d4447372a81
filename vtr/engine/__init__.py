"""The pruning engine: `prune(model, policy)` runs any `Policy` inside an unmodified transformers MLLM.

`prune` is a context manager that installs forward hooks and removes them on exit; the model's
code, weights and attention implementation are untouched (SDPA stays on). What each hook modifies,
exactly, is specified in the module that does it:

- `core`: `prune` and `PruningSession`, which installs the hooks and routes each call;
- `inputs`: a prefill's image positions, text query, last tokens and padding (`prompt_marks`);
- `encoder`: the policy's encoder step and the vision-tower capture it reads;
- `prefill`: the selection and gather before each decoder layer, position modes, batches;
- `compaction` and `masks`: the layout of surviving rows and the 4-D masks passed to a layer;
- `scoring`: the attention scores a policy asks for, computed lazily;
- `decode`: decode steps on a pruned KV cache, continuing a cache later (`PrunedCache`);
- `loss`: the loss over the surviving positions when `labels` are passed;
- `continuation`: `PruningSession.logits_from_layer`, continuing a prefill from a layer;
- `compiled`: the hooks under torch.compile;
- `memo` (`FeatureCache`, on `lru`): reusing image-encoder and decoder-layer outputs across runs;
- `policy`, `adapters`: the policy interface and the supported model families.

Generation: the policy acts at prefill only; decode steps append to each layer's pruned cache and
are never pruned. `generate(use_cache=False)` has no cache, so transformers runs each step as a
new prefill and the policy scores again with the generated tokens present (its tokens may then
differ from `use_cache=True`). Assisted decoding verifies the assistant's first candidates in the
same forward as the prompt (with `logits_to_keep` = candidates + 1): trailing text tokens so
marked are treated as decode steps (never pruned, never a query; `prompt_marks`), so the
selection and the tokens are those of plain pruned greedy decoding. Outputs have one row per
surviving position; the last row is always each sample's last token.

Inputs the model accepts but pruning cannot keep right are refused with an `UnsupportedInput`
naming the reason, when the policy first removes a token (before that layer, or the encoder step,
changes anything): so a keep-all policy passes every input through, and nothing is silently wrong.
"""
from .adapters import ADAPTERS, Adapter, UnsupportedArchitecture, adapter_for
from .core import POSITION_MODES, prune
from .inputs import prompt_marks
from .memo import FeatureCache
from .policy import EncoderView, LayerView, PlanPolicy, Policy, UnsupportedInput

__all__ = ["ADAPTERS", "Adapter", "FeatureCache", "UnsupportedArchitecture", "adapter_for", "POSITION_MODES",
           "prompt_marks", "prune", "EncoderView", "LayerView", "PlanPolicy", "Policy", "UnsupportedInput"]
