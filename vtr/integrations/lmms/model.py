"""The lmms-eval model `vtr`: any model `vtr.models.load` opens, pruned by a vtr method.

    python -m lmms_eval --model vtr --model_args pretrained=PATH,method=fastv,budget=0.25,kind=keep \
        --tasks TASK --batch_size 16

model_args (comma-separated key=value):
    pretrained      a shipped testbed (`testbed`, `testbed-deep`) or a local HuggingFace checkpoint folder
    method          a method of `vtr eval --list-methods` (default `full`: unpruned)
    budget          in (0, 1]: the mean keep rate (kind=keep) or the FLOPs ratio (kind=flops);
                    required unless method=full
    kind            keep | flops (default keep)
    seed            seed of the methods that draw (random, dyvte; default 0)
    dtype, device, max_new_tokens
                    checkpoint folders only, as in `vtr eval` (max_new_tokens: the cap when the task
                    sets none)
    any other key   a hyper-parameter of the method (refused unless the method takes it)
`--batch_size N` is the number of samples per forward; lmms-eval's default is 1, `vtr eval`'s 64 on
the testbed and 16 on checkpoints: pass the same number to get the same batches.

What runs is what `vtr eval` runs. The requests of one task split form one group, in document
order; the method's policy is built for the group's questions (`policy_for(runner, split, ...)`,
whose FLOPs budgets use their mean text length), the group is cut into batches of `batch_size`,
each batch runs under `prune(model, policy)`, and the answer is the runner's: the argmax word on
the testbed, greedy `generate()` on a checkpoint (at most the task's `max_new_tokens`, cut at its
`until` strings). Each document must give exactly one image (`doc_to_visual`); vtr's runners are
single-image.

The realised cost is reported with the results: after every call the decoder prefill FLOPs ratio
(pruned / unpruned, from the token counts the engine saw, as `vtr eval` computes it), the mean
vision keep rate and the number of samples go to lmms-eval's metric log, which its results JSON
holds under "throughput" as `avg_vtr_flops_ratio`, `avg_vtr_keep_rate`, `avg_vtr_samples` (lmms-eval
averages over calls: it makes one call per request type, so with one task that is the run's
ratio); `VTR.cost()` returns the same numbers pooled over every call.

`loglikelihood` (multiple-choice tasks) scores context + continuation in one pruned forward and
sums the log-probabilities of the continuation's tokens (testbed: its words; checkpoints: the
tokenizer's tokens of the continuation alone, after the chat-template prompt); pruning removes
vision tokens only, so the continuation's positions are the last rows of the output.
`generate_until_multi_round` is not supported.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from lmms_eval.api.instance import Instance
from lmms_eval.api.model import lmms
from lmms_eval.models.model_utils.gen_metrics import log_metrics
from loguru import logger

# ------------------------------------------------------------------ vtr imports
# Every name this plugin takes from the rest of vtr, in one place: when modules move, update here.
from vtr.experiments.policies import policy_for
from vtr.engine import Policy, prune
from vtr.errors import InputError
from vtr.evaluation import cost as realised_cost
from vtr.flops import DecoderShape
from vtr.models import load as load_runner
from vtr.models import load_split
from vtr.paths import TESTBEDS
# ------------------------------------------------------------------

_SPLITS: dict = {}  # the testbed's splits by name, loaded once per process


def testbed_image(split: str, doc: dict):
    """The image `vtr eval` shows for the testbed question `doc` of `split` (the vtr_testbed_* tasks'
    `doc_to_visual`), read through vtr's own split loader; refused unless `doc` is that split's
    sample of the same id with the same question and image."""
    if split not in _SPLITS:
        loaded = load_split("testbed", split)
        _SPLITS[split] = (loaded, {s.id: s for s in loaded.samples})
    loaded, by_id = _SPLITS[split]
    sample = by_id.get(doc.get("id"))
    if sample is None or sample.question != doc.get("question") or sample.image != doc.get("image"):
        raise InputError(f"vtr: document {doc.get('id')!r} is not the testbed {split} split's sample "
                         f"(the task's data_files must be {loaded.folder / 'questions.jsonl'})")
    return loaded.image(sample)


@dataclass
class _Sample:
    """What a runner reads of a sample: its id, question and image."""
    id: str
    question: str
    visual: Any


class _Group:
    """A split of one task's requests, as the runner and `policy_for` read a split: `.samples`
    in document order and `.image(sample)`."""

    def __init__(self, samples: list[_Sample]):
        self.samples = samples
        self.limit = None

    def __len__(self) -> int:
        return len(self.samples)

    def image(self, sample: _Sample):
        return sample.visual


# ------------------------------------------------------------------ requests and continuations
def request_groups(requests: list[Instance]) -> dict[tuple, list[int]]:
    """Request indices by (task, split, generation kwargs), each in document order."""
    out: dict[tuple, list[int]] = {}
    for i, req in enumerate(requests):
        task, split = req.args[4], req.args[5]
        extra = repr(sorted(req.args[1].items())) if isinstance(req.args[1], dict) else ""
        out.setdefault((task, split, extra), []).append(i)
    for idx in out.values():
        idx.sort(key=lambda i: requests[i].args[3])
    return out


def continuation_ids(runner, text: str) -> list[int]:
    """Token ids of a loglikelihood continuation: the testbed's words, or a checkpoint tokenizer's
    tokens of the continuation alone."""
    tok = getattr(runner, "tok", None)  # the testbed's word tokenizer
    if tok is not None:
        return tok.encode(text)
    return runner.tokenizer(text, add_special_tokens=False)["input_ids"]


def pad_id(runner) -> int:
    tok = getattr(runner, "tok", None)
    if tok is not None:
        return tok.pad_id
    return runner.tokenizer.pad_token_id


def append_continuations(inputs: dict, conts: list[list[int]], pad: int) -> dict:
    """`inputs` (left-padded prompts) with each row's continuation ids appended, left-padded again
    with `pad`."""
    ids, mask = inputs["input_ids"], inputs["attention_mask"]
    rows = [ids[b][mask[b].bool()].tolist() + c for b, c in enumerate(conts)]
    width = max(map(len, rows))
    new_ids = torch.full((len(rows), width), pad, dtype=ids.dtype, device=ids.device)
    new_mask = torch.zeros((len(rows), width), dtype=mask.dtype, device=mask.device)
    for b, r in enumerate(rows):
        new_ids[b, width - len(r):] = torch.tensor(r, dtype=ids.dtype)
        new_mask[b, width - len(r):] = 1
    out = dict(inputs, input_ids=new_ids, attention_mask=new_mask)
    if "position_ids" in inputs:
        out["position_ids"] = (new_mask.cumsum(1) - 1).clamp_min(0)
    for key, value in inputs.items():  # other per-token tensors (e.g. token types): text = 0
        if key in ("input_ids", "attention_mask", "position_ids") or not isinstance(value, torch.Tensor):
            continue
        if value.dim() == 2 and value.shape == ids.shape:
            grown = torch.zeros((len(rows), width), dtype=value.dtype, device=value.device)
            for b, c in enumerate(conts):
                kept = value[b][mask[b].bool()]
                grown[b, width - len(kept) - len(c):width - len(c)] = kept
            out[key] = grown
    return out


class VTR(lmms):
    """lmms-eval model wrapping a vtr runner under a vtr method (see the module docstring)."""

    is_simple = True

    def __init__(self, pretrained: str | None = None, method: str = "full", budget: float | None = None,
                 kind: str = "keep", seed: int = 0, batch_size: int | str | None = None,
                 device: str | None = None, dtype: str | None = None, max_new_tokens: int | None = None,
                 max_batch_size: int | None = None, **hp) -> None:
        super().__init__()
        if not pretrained:
            raise InputError("vtr: model_args needs pretrained=<testbed, testbed-deep or a checkpoint "
                             "folder>")
        pretrained = str(pretrained)
        if kind not in ("keep", "flops"):
            raise InputError(f"vtr: kind={kind!r}: expected keep or flops")
        if method != "full":
            if isinstance(budget, bool) or not isinstance(budget, (int, float)) or not 0 < budget <= 1:
                raise InputError(f"vtr: method={method} needs budget=<number in (0, 1]>, got {budget!r}")
            budget = float(budget)
        self.method, self.budget, self.kind, self.seed, self.hp = method, budget, kind, int(seed), dict(hp)
        kwargs = {k: v for k, v in (("dtype", dtype), ("device", device), ("max_new_tokens", max_new_tokens))
                  if v is not None}
        if pretrained in TESTBEDS:
            if kwargs:
                raise InputError(f"vtr: {', '.join(kwargs)} apply to checkpoint folders only, not to "
                                 f"{pretrained}")
            if device not in (None, "cpu"):
                raise InputError(f"vtr: the testbed runs on cpu, got device={device}")
        self.runner = load_runner(pretrained, **kwargs)
        if batch_size not in (None, "auto") and not str(batch_size).startswith("auto"):
            try:
                batch_size = int(batch_size)
            except ValueError:
                raise InputError(f"vtr: batch_size={batch_size!r}: expected a positive integer") from None
            if batch_size < 1:
                raise InputError(f"vtr: batch_size={batch_size}: expected a positive integer")
            self.runner.batch_size = batch_size
        self.batch_size_per_call = self.runner.batch_size
        self.shape = DecoderShape.from_config(self.runner.model.config.get_text_config())
        self._check_method()
        self._records: list[dict] = []  # per sample: the token counts `vtr eval` records

    # ------------------------------------------------------------------ properties lmms-eval reads
    @property
    def model(self):
        return self.runner.model

    @property
    def batch_size(self) -> int:
        return self.runner.batch_size

    @property
    def device(self):
        return next(self.runner.model.parameters()).device

    # ------------------------------------------------------------------ policy and cost
    def _check_method(self) -> None:
        """Refuse an unknown method or hyper-parameter before any request (policy_for checks both)."""
        self._policy(_Group([]))  # a probe: no questions (text length 0); the real policy is per group

    def _policy(self, group: _Group) -> Policy:
        return policy_for(self.runner, group, self.method, self.budget, self.kind, self.seed, **self.hp)

    def _account(self, stats: dict, attention_mask: torch.Tensor) -> None:
        """Record one batch's per-sample token counts, as `vtr eval`'s run files do."""
        tokens, vision = stats["token_counts"], stats["vision_counts"]
        for b in range(tokens.shape[0]):
            self._records.append({"tokens": tokens[b].tolist(), "vision": vision[b].tolist(),
                                  "tokens_full": [int(attention_mask[b].sum())] * self.shape.n_layers})

    def cost(self, since: int = 0) -> dict:
        """Realised cost of the samples since record `since` (`vtr.evaluation.cost`, what `vtr eval`
        reports): decoder prefill FLOPs ratio, mean vision keep rate, samples."""
        recs = self._records[since:]
        if not recs:
            return {"flops_ratio": None, "keep_rate": None, "samples": 0}
        c = realised_cost(recs, self.shape, self.runner.n_vision)
        return {"flops_ratio": c["flops_ratio"], "keep_rate": c["keep_rate"], "samples": len(recs)}

    def _report(self, before: int, seconds: float = 0.0, tokens: int = 0) -> None:
        c = self.cost(before)
        if not c["samples"]:
            return
        extra = {"vtr_flops_ratio": c["flops_ratio"], "vtr_keep_rate": c["keep_rate"],
                 "vtr_samples": c["samples"]}
        logger.info(f"vtr {self.method} budget={self.budget} kind={self.kind}: " +
                    ", ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}"
                              for k, v in extra.items()))
        log_metrics(total_elapsed_time=seconds, total_gen_tokens=tokens,
                    avg_speed=tokens / seconds if seconds else 0.0, additional_metrics=extra)

    # ------------------------------------------------------------------ requests
    def _sample(self, req: Instance) -> _Sample:
        context, _, doc_to_visual, doc_id, task, split = req.args
        doc = self.task_dict[task][split][doc_id]
        visuals = doc_to_visual(doc) if doc_to_visual is not None else []
        if not isinstance(visuals, (list, tuple)):
            visuals = [visuals]
        if len(visuals) != 1:
            raise InputError(f"vtr: task {task} document {doc_id} gives {len(visuals)} images; "
                             f"vtr's runners take exactly one image per question")
        return _Sample(id=f"{task}/{split}/{doc_id}", question=context, visual=visuals[0])

    def generate_until(self, requests: list[Instance]) -> list[str]:
        import time

        out: list[str | None] = [None] * len(requests)
        before = len(self._records)
        t0, n_tokens = time.perf_counter(), 0
        for (_, _, _), idx in request_groups(requests).items():
            samples = [self._sample(requests[i]) for i in idx]
            gen = dict(requests[idx[0]].args[1] or {})
            until = gen.get("until") or []
            until = [until] if isinstance(until, str) else list(until)
            group = _Group(samples)
            policy = self._policy(group)
            for start in range(0, len(samples), self.batch_size):
                chunk = samples[start:start + self.batch_size]
                inputs = self.runner.inputs(chunk, group)
                with prune(self.runner.model, policy) as pruned:
                    preds = self._predict(inputs, gen.get("max_new_tokens"))
                self._account(pruned.last_stats, inputs["attention_mask"])
                for j, text in enumerate(preds):
                    for stop in until:
                        if stop and stop in text:
                            text = text.split(stop)[0]
                    out[idx[start + j]] = text
                    n_tokens += len(text.split())
        self._report(before, time.perf_counter() - t0, n_tokens)
        return out

    def _predict(self, inputs: dict, max_new_tokens: int | None) -> list[str]:
        """The runner's answers; a checkpoint generates at most `max_new_tokens` (the task's) new tokens."""
        cap = getattr(self.runner, "max_new_tokens", None)
        if cap is None or max_new_tokens is None:
            return self.runner.predict(inputs)
        self.runner.max_new_tokens = int(max_new_tokens)
        try:
            return self.runner.predict(inputs)
        finally:
            self.runner.max_new_tokens = cap

    # ------------------------------------------------------------------ loglikelihood
    @torch.inference_mode()
    def loglikelihood(self, requests: list[Instance]) -> list[tuple[float, bool]]:
        out: list[tuple[float, bool] | None] = [None] * len(requests)
        before = len(self._records)
        for _, idx in request_groups(requests).items():
            samples, conts = [], []
            for i in idx:
                context, target, doc_to_visual, doc_id, task, split = requests[i].args
                if not isinstance(target, str):
                    target = target(self.task_dict[task][split][doc_id])
                samples.append(self._sample(requests[i]))
                conts.append(continuation_ids(self.runner, target))
                if not conts[-1]:
                    raise InputError(f"vtr: task {task} document {doc_id}: empty continuation {target!r}")
            group = _Group(samples)
            policy = self._policy(group)
            for start in range(0, len(samples), self.batch_size):
                chunk, cchunk = samples[start:start + self.batch_size], conts[start:start + self.batch_size]
                inputs = append_continuations(self.runner.inputs(chunk, group), cchunk, pad_id(self.runner))
                k = max(map(len, cchunk))
                with prune(self.runner.model, policy) as pruned:
                    logits = self.runner.model(**inputs, use_cache=False, logits_to_keep=k + 1).logits
                self._account(pruned.last_stats, inputs["attention_mask"])
                logp = torch.log_softmax(logits.float(), dim=-1)
                for j, c in enumerate(cchunk):
                    rows = logp[j, logp.shape[1] - 1 - len(c):logp.shape[1] - 1]  # the rows predicting c
                    target = torch.tensor(c, device=rows.device)
                    total = float(rows.gather(1, target[:, None]).sum())
                    greedy = bool((rows.argmax(-1) == target).all())
                    out[idx[start + j]] = (total if math.isfinite(total) else -math.inf, greedy)
        self._report(before)
        return out

    def generate_until_multi_round(self, requests) -> list[str]:
        raise NotImplementedError("vtr: multi-round generation is not supported; use a single-turn task")
