"""What the book's chapters would cost at paper scale: a GPU time model for LLaVA-1.5-7B and the
work each chapter does, counted from the same sizes the testbed build uses (`sizes.SIZES`).

A prefill is compute-bound: its time is FLOPs over a sustained throughput. A decode step is
memory-bound at evaluation batch sizes: its time is the larger of its FLOPs time and the time to
read the decoder's weights (shared by the batch) and the sample's KV cache. Every assumption is a
field of `GPU` or `Workload`; the numbers are estimates, not measurements.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace

from ..flops import DecoderShape, decoder_flops, layer_flops, vision_tower_flops
from ..methods import fastv
from ..methods.base import ModelInfo
from ..plan import Plan
from ..search.gsearch import max_evaluations
from . import runs
from ..experiments.sizes import SIZES

# Questions of the split LLaVA-1.5 reports for each benchmark (VQAv2: test-dev; vtr's reader takes
# val2014, whose annotations are public, so a val run is larger or uses --limit).
SUITE = {"GQA testdev-balanced": 12578, "POPE (3 COCO splits)": 8910, "MME": 2374, "TextVQA val": 5000,
         "ScienceQA-IMG test": 2017, "MMBench dev": 4329, "VQAv2 test-dev": 107394}


@dataclass
class GPU:
    peak_tflops: float = 312.0   # dense bf16 peak of an A100 (datasheet)
    hbm_tbps: float = 2.0        # memory bandwidth of an A100 80GB (datasheet), TB/s
    utilisation: float = 0.40    # assumed sustained fraction of both peaks in real evaluation loops
    batch: int = 16              # evaluation batch size (vtr eval's default for checkpoints)
    n_gpus: int = 8              # for the data-parallel column (torchrun; ideal scaling assumed)

    @property
    def flops_per_s(self) -> float:
        return self.peak_tflops * 1e12 * self.utilisation

    @property
    def bytes_per_s(self) -> float:
        return self.hbm_tbps * 1e12 * self.utilisation


@dataclass
class Model:
    """LLaVA-1.5-7B: a 32-layer decoder of width 4096 with a gated MLP of width 11008, a CLIP
    ViT-L/14 tower at 336 pixels giving 576 vision tokens, about 64 text tokens per prompt."""
    shape: DecoderShape = field(default_factory=lambda: DecoderShape(hidden=4096, intermediate=11008,
                                                                     n_layers=32))
    vocab: int = 32000
    n_vision: int = 576
    n_text: int = 64
    bytes_per_value: int = 2     # bf16
    vision: SimpleNamespace = field(default_factory=lambda: SimpleNamespace(
        hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, patch_size=14, image_size=336))

    crops: int = 1               # images the vision tower encodes per sample (LLaVA-NeXT: base + tiles)

    @classmethod
    def from_config(cls, config, n_text: int = 64, bytes_per_value: int = 2) -> "Model":
        """The time model of a checkpoint's config (a transformers LLaVA or LLaVA-NeXT config): its
        decoder shape, vocabulary and CLIP tower; LLaVA-NeXT at its largest tiling (the base image and
        the most tiles of `image_grid_pinpoints`). Other architectures raise ValueError naming theirs."""
        vision = getattr(config, "vision_config", None)
        needed = ("hidden_size", "intermediate_size", "num_hidden_layers", "patch_size", "image_size")
        if vision is None or not all(hasattr(vision, a) for a in needed):
            raise ValueError(f"no time model for {getattr(config, 'model_type', type(config).__name__)}: "
                             "needs a CLIP-style vision tower (LLaVA, LLaVA-NeXT)")
        text = config.get_text_config()
        side = vision.image_size
        grid = getattr(config, "image_grid_pinpoints", None) or []
        crops = 1 + max([(h // side) * (w // side) for h, w in grid], default=0)
        return cls(shape=DecoderShape.from_config(text), vocab=text.vocab_size,
                   n_vision=crops * (side // vision.patch_size) ** 2, n_text=n_text,
                   bytes_per_value=bytes_per_value, crops=crops,
                   vision=SimpleNamespace(**{a: getattr(vision, a) for a in needed}))

    @property
    def info(self) -> ModelInfo:
        return ModelInfo(self.shape.n_layers, self.n_vision, self.n_text, self.shape)

    @property
    def decoder_params(self) -> int:
        s, d = self.shape, self.shape.hidden
        per_layer = 2 * d * d + 2 * d * (s.kv_hidden or d) + 3 * d * s.intermediate
        return s.n_layers * per_layer + 2 * self.vocab * d

    @property
    def encode_flops(self) -> int:
        """Vision tower (on each crop) + the 2-layer MLP projector, one sample."""
        d = self.shape.hidden
        projector = 2 * self.n_vision * (self.vision.hidden_size * d + d * d)
        return vision_tower_flops(self.vision, self.crops) + projector

    @property
    def head_flops(self) -> int:
        return 2 * self.shape.hidden * self.vocab


@dataclass
class Workload:
    """What the chapters process beyond the testbed build's own sizes."""
    answer_tokens: int = 3       # greedy tokens per answer: a word or a letter, then end-of-sequence
    val_questions: int = 1000    # validation questions for the searches (the papers do not say)
    suite: dict = field(default_factory=lambda: dict(SUITE))

    @property
    def suite_questions(self) -> int:
        return sum(self.suite.values())


def seconds_per_sample(plan: Plan, model: Model, gpu: GPU, answer_tokens: int, vision: bool = True) -> dict:
    """Estimated GPU seconds of one sample: prefill (vision tower + projector + decoder under `plan`
    + LM head at the last position) and `answer_tokens` greedy decode steps on the pruned cache."""
    d, size = model.shape.hidden, model.bytes_per_value
    prefill = ((model.encode_flops if vision else 0) + decoder_flops(plan, model.n_text, model.shape)
               + model.head_flops)
    decode = 0.0
    for t in range(answer_tokens):
        ctx = [model.n_text + k + t for k in plan.keep]                       # cached keys per layer
        flops = sum(layer_flops(1, model.shape) + 4 * d * n for n in ctx) + model.head_flops
        traffic = model.decoder_params * size / gpu.batch + sum(2 * n * d * size for n in ctx)  # weights + KV
        decode += max(flops / gpu.flops_per_s, traffic / gpu.bytes_per_s)
    return {"prefill": prefill / gpu.flops_per_s, "decode": decode}


def at_budget(model: Model, budget: float) -> Plan:
    """A FastV-shaped plan spending mean keep rate `budget` (the book's table budgets)."""
    full = Plan.full(model.shape.n_layers, model.n_vision)
    return full if budget >= 1 else fastv.plan_for(model.info, budget, "keep")


def chapter_work(model: Model, work: Workload) -> list[dict]:
    """(chapter, part, samples, plan, answer tokens, vision) of everything each chapter processes for
    one model, counted from the testbed build's sizes (`sizes.SIZES`, full column) and method lists.
    Evaluations whose cost is only known after running (searched plans, per-sample methods) are
    counted at the unpruned cost: an upper bound."""
    L, N = model.shape.n_layers, model.n_vision
    full, suite, val, ans = Plan.full(L, N), work.suite_questions, work.val_questions, work.answer_tokens
    full_size = {k: v[0] for k, v in SIZES.items()}
    seeds = len(full_size["router_seeds"])
    rows = []

    def add(chapter, part, samples, plan, answer_tokens=ans, vision=True):
        rows.append({"chapter": chapter, "part": part, "samples": samples, "plan": plan,
                     "answer_tokens": answer_tokens, "vision": vision})

    add("2 The model unpruned", "benchmarks", 2 * suite, full)  # with the image + blank image
    # 2 query kinds, prefill only
    add("3 Rank consistency", "analysis", 2 * full_size["rank_questions"], full, 0)
    for _query in range(2):  # 2 query kinds
        add("4 G-Search", "searches", max_evaluations(L, N) * val, full)
        add("4 G-Search", "benchmarks", suite, full)
    add("4 G-Search", "benchmarks", suite, full)  # unpruned reference
    for b in runs.BUDGETS:
        add("5 P-Sigmoid and methods", "searches", (full_size["bo_iterations"] + 1) * val,
            at_budget(model, b))
        add("5 P-Sigmoid and methods", "benchmarks", len(runs.TABLE_METHODS) * suite, at_budget(model, b))
    add("5 P-Sigmoid and methods", "benchmarks", suite, full)
    add("6 CLS knee", "analysis", full_size["cls_questions"], Plan.full(L, 0), 0)  # vision tower only
    add("6 CLS knee", "benchmarks", 2 * suite, full)
    for layer in range(L + 1):
        add("7 DyVTE", "searches", val, Plan.drop_at(L, N, layer, 0))  # VTW sweep
    for layer in [None, *range(1, L)]:  # router labels
        add("7 DyVTE", "searches", seeds * full_size["router_questions"],
            full if layer is None else Plan.drop_at(L, N, layer, 0), 0)
    add("7 DyVTE", "benchmarks", (seeds + 4) * suite, full)  # seeds, full, VTW, FastV, both
    keeps, batch = 6, full_size["efficiency_batch"]
    add("8 Efficiency", "analysis", keeps * (full_size["prefill_repeats"] + 1) * 2 * batch, full, 0)
    add("8 Efficiency", "analysis", 3 * full_size["decode_repeats"] * 2 * batch, full,
        full_size["decode_new_tokens"])
    return rows


def chapter_hours(model: Model, gpu: GPU, work: Workload) -> list[dict]:
    """`chapter_work` with the estimated GPU-hours of each row on one GPU."""
    out = []
    for row in chapter_work(model, work):
        t = seconds_per_sample(row["plan"], model, gpu, row["answer_tokens"], row["vision"])
        out.append({"chapter": row["chapter"], "part": row["part"], "samples": row["samples"],
                    "hours": row["samples"] * (t["prefill"] + t["decode"]) / 3600})
    return out
