"""The `vtr` lmms-eval model in-process: registration through the entry point, bad model_args
refused with one clear message, and loglikelihood checked against the runner's own next-token
logits. Only `make test-lmms` runs these (its venv has lmms-eval)."""
from __future__ import annotations

import math

import pytest
import torch

from vtr.engine import Policy, prune
from vtr.errors import InputError
from vtr.models import load_split

pytest.importorskip("lmms_eval")
# after the skip: without lmms-eval the module is skipped, not an import error
from lmms_eval.api.instance import Instance  # noqa: E402


def test_registered_through_the_entry_point():
    from lmms_eval.models import get_model

    from vtr.integrations.lmms.model import VTR

    assert get_model("vtr") is VTR


@pytest.mark.parametrize("args, message", [
    ({}, "needs pretrained="),
    ({"pretrained": "testbed", "method": "fastv"}, "needs budget="),
    ({"pretrained": "testbed", "method": "fastv", "budget": 1.5}, "needs budget="),
    ({"pretrained": "testbed", "method": "fastv", "budget": 0.25, "kind": "tokens"}, "kind="),
    ({"pretrained": "testbed", "method": "fastv", "budget": 0.25, "not_a_knob": 3}, "not_a_knob"),
    ({"pretrained": "testbed", "method": "no-such-method", "budget": 0.25}, "no-such-method"),
    ({"pretrained": "testbed", "dtype": "bfloat16"}, "checkpoint folders only"),
    ({"pretrained": "testbed", "batch_size": 0}, "batch_size"),
])
def test_bad_model_args_refused(args, message):
    from vtr.integrations.lmms.model import VTR

    with pytest.raises((InputError, ValueError, KeyError)) as err:
        VTR(**args)
    assert message in str(err.value)
    assert "\n" not in str(err.value).strip()


@pytest.fixture(scope="module")
def testbed_model():
    from vtr.integrations.lmms.model import VTR

    return VTR(pretrained="testbed", batch_size=8)


def _requests(model, split, samples, continuation):
    from vtr.integrations.lmms.model import testbed_image

    docs = [{"id": s.id, "question": s.question, "image": s.image, "answer": s.answer} for s in samples]
    model.task_dict = {"t": {"val": docs}}

    def image(doc):
        return [testbed_image("val", doc)]

    return [Instance("loglikelihood", (d["question"], continuation(d), image, i, "t", "val"),
                     idx=0, metadata={"task": "t", "doc_id": i, "repeats": 1}) for i, d in enumerate(docs)]


def test_loglikelihood_equals_the_runners_next_token_logits(testbed_model):
    """Unpruned, the log-probability of a one-word answer after the prompt is the log-softmax of the
    runner's next-token logits at that word, and `greedy` is whether it is their argmax."""
    split = load_split("testbed", "val", 12)
    runner = testbed_model.runner
    for word in (lambda d: d["answer"], lambda d: "no"):
        out = testbed_model.loglikelihood(_requests(testbed_model, split, split.samples, word))
        with prune(runner.model, Policy()):
            logits = runner.logits(runner.inputs(split.samples, split))
        logp = torch.log_softmax(logits.float(), -1)
        for b, s in enumerate(split.samples):
            target = runner.tok.index[word({"answer": s.answer})]
            assert out[b][0] == pytest.approx(float(logp[b, target]), abs=1e-4)
            assert out[b][1] == (int(logits[b].argmax()) == target)
    assert testbed_model.cost()["flops_ratio"] == 1.0


def test_loglikelihood_of_two_words_adds_both(testbed_model):
    """A two-word continuation (batched, left-padded): its log-probability is that of the first word
    after the prompt plus that of the second after prompt + first, each from a forward of one
    unpadded sequence built here."""
    from vtr.testbed.model import pixel_values, prompt_ids

    split = load_split("testbed", "val", 6)
    runner = testbed_model.runner
    out = testbed_model.loglikelihood(_requests(testbed_model, split, split.samples, lambda d: "yes no"))
    yes, no = runner.tok.index["yes"], runner.tok.index["no"]
    for b, s in enumerate(split.samples):
        ids = torch.tensor([prompt_ids(runner.tok, s.question, runner.n_vision) + [yes]])
        with torch.inference_mode():
            forward = runner.model(input_ids=ids, attention_mask=torch.ones_like(ids),
                                   position_ids=torch.arange(ids.shape[1])[None],
                                   pixel_values=pixel_values([split.image(s)]), use_cache=False)
        logits = forward.logits[0].float()
        first, second = torch.log_softmax(logits[-2], -1), torch.log_softmax(logits[-1], -1)
        assert out[b][0] == pytest.approx(float(first[yes] + second[no]), abs=1e-4)
        assert out[b][1] == (int(first.argmax()) == yes and int(second.argmax()) == no)


def test_loglikelihood_pruned_reports_its_cost():
    from vtr.integrations.lmms.model import VTR

    model = VTR(pretrained="testbed", method="fastv", budget=0.25, batch_size=8)
    split = load_split("testbed", "val", 8)
    out = model.loglikelihood(_requests(model, split, split.samples, lambda d: d["answer"]))
    assert all(lp <= 0 and math.isfinite(lp) for lp, _ in out)
    assert model.cost()["flops_ratio"] < 0.9 and model.cost()["samples"] == 8


@pytest.mark.parametrize("method", ["dart", "divprune", "pool", "downsample"])
def test_the_newer_methods_run_at_their_budget(method):
    """DART, DivPrune, pooling and downsampling through the lmms-eval model: the keep rate it
    reports is the budget's (within 0.02 on the testbed's 144 tokens)."""
    from vtr.integrations.lmms.model import VTR

    model = VTR(pretrained="testbed", method=method, budget=0.25, batch_size=8)
    split = load_split("testbed", "val", 8)
    out = model.loglikelihood(_requests(model, split, split.samples, lambda d: d["answer"]))
    assert all(lp <= 0 and math.isfinite(lp) for lp, _ in out)
    assert abs(model.cost()["keep_rate"] - 0.25) <= 0.02 and model.cost()["samples"] == 8
