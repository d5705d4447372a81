"""The book's definitions, in one place: the introduction shows them as one box, every chapter links
to it, and the headline table's measurements (`claims`) use the same words.

`box(...)` is MyST markdown (an admonition; the introduction puts the label `definitions` on it);
the split sizes and the number of vision tokens are passed in from the loaded splits and model,
never typed here.
"""
from __future__ import annotations

# The field's budgets: SparseVLM's average vision tokens per decoder layer, of LLaVA-1.5's 576.
SPARSEVLM_TOKENS = (192, 128, 64)
LLAVA_VISION_TOKENS = 576


def sparsevlm_budgets() -> tuple[float, ...]:
    """SparseVLM's budgets as mean keep rates: 192 / 128 / 64 of 576 tokens = 1/3, 2/9, 1/9."""
    return tuple(t / LLAVA_VISION_TOKENS for t in SPARSEVLM_TOKENS)


TERMS = {
    "testbeds": "`testbed` (8 decoder layers) and `testbed-deep` (16 decoder layers, grown from the 8-layer "
                "one by block expansion; same vision tower, tokenizer and questions); a table or figure "
                "names its testbed by its number of decoder layers",
    "keep rate": "vision tokens a decoder layer keeps, over the image's vision tokens ({n_vision} on the "
                 "testbed); the *mean keep rate* averages it over the decoder layers",
    "budget": "a mean keep rate, unless a table says *FLOPs budget*: budget 0.125 is an 87.5% "
              "reduction. Layer 0 counts like every other layer, and the decoder-side methods keep it whole",
    "average vision tokens per layer": "the mean keep rate in tokens, the convention of SparseVLM's tables: "
                                       + " / ".join(map(str, SPARSEVLM_TOKENS)) + f" of LLaVA-1.5's "
                                       f"{LLAVA_VISION_TOKENS} tokens are mean keep rates "
                                       + " / ".join(f"{100 * b:.1f}%" for b in sparsevlm_budgets()),
    "matched FLOPs": "the field's budgets as decoder FLOPs rather than tokens: every method set to the "
                     "decoder FLOPs P-Sigmoid's plan at that mean keep rate is predicted to cost (our "
                     "pairing; the papers state token budgets)",
    "FLOPs ratio": "pruned / unpruned prefill FLOPs of the **decoder** (each layer with its own token count: "
                   "chapters 4 to 7, every table, the `flops_ratio` of a record), or of the **whole "
                   "prefill** (vision tower, projector, decoder and LM head: chapter 8 and `vtr bench`), as "
                   "the column says",
    "speedup": "unpruned / pruned time of the same batch, timed in interleaved rounds in one process: the "
               "median of the paired per-round ratios, with their range. A speed verdict needs the FLOPs "
               "ratio and that median to agree, so that machine load alone cannot move it",
    "splits": "**val** ({n_val} questions) drives every search and the VTW sweep (G-Search's sequential test "
              "adds **val-extra**'s questions when a decision is close); **test** ({n_test} questions) "
              "gives every accuracy in the tables and the headline; the analyses use val subsets; DyVTE's "
              "routers train on generated questions outside both",
    "accuracy change": "pruned minus unpruned accuracy (or one method minus another, as the text says), in "
                       "percentage points: a negative change is a drop, in every table, sentence and "
                       "figure of the book",
    "interval": "a 95% percentile bootstrap over the test questions (1000 resamples); a *paired* interval "
                "resamples the same questions for both methods of a difference",
    "verdict": "a rule of `vtr/chapters/claims.py` applied to one testbed's results: a *no drop* claim is "
               "judged on the worst end of the paired interval of the drop (overall and on the families "
               "answered from the image), a *beats* claim on the interval lying above zero",
}


def box(n_val: int, n_test: int, n_vision: int) -> str:
    """The definitions as one MyST admonition."""
    lines = [":::{admonition} Definitions used throughout", ":class: note", ""]
    for term, text in TERMS.items():
        lines.append(f"- **{term}**: {text.format(n_val=n_val, n_test=n_test, n_vision=n_vision)}.")
    lines.append(":::")
    return "\n".join(lines)
