"""`PruningSession.logits_from_layer`: continuing an unpruned prefill from layer e without the vision
tokens gives the logits of the pruned run that drops them before e (all four architectures,
left-padded batches), and misuse is refused."""
import pytest
import torch

from vtr import tiny
from vtr.engine import PlanPolicy, Policy, prune
from vtr.plan import Plan


@pytest.fixture(scope="module", params=tiny.ARCHITECTURES)
def arch_model(request):
    return request.param, tiny.build(request.param)


def _vision(model, inp):
    config = model.config
    ids = config.image_token_id if hasattr(config, "image_token_id") else config.image_token_index
    return inp["input_ids"] == ids


@torch.no_grad()
def test_matches_the_pruned_run_at_every_exit_layer(arch_model):
    arch, model = arch_model
    inp = tiny.make_inputs(model, arch, text_lengths=[2, 6, 4])
    n = tiny.n_image_tokens(model, arch)
    L = model.config.get_text_config().num_hidden_layers
    keep = inp["attention_mask"].bool() & ~_vision(model, inp)
    with prune(model, Policy()) as session:
        out = model(**inp, output_hidden_states=True)
        got = [session.logits_from_layer(e, out.hidden_states[e], keep) for e in range(1, L)]
    for e in range(1, L):
        with prune(model, PlanPolicy(Plan.drop_at(L, n, e, 0))):
            ref = model(**inp).logits[:, -1]
        torch.testing.assert_close(got[e - 1], ref, rtol=1e-4, atol=1e-5,
                                   msg=f"{arch}, exit before layer {e}")
    # keeping everything from layer 1 on is the unpruned run itself
    with prune(model, Policy()) as session:
        out = model(**inp, output_hidden_states=True)
        again = session.logits_from_layer(1, out.hidden_states[1], inp["attention_mask"].bool())
    torch.testing.assert_close(again, out.logits[:, -1], rtol=1e-4, atol=1e-5)


@torch.no_grad()
def test_refuses_misuse():
    model = tiny.build("llava")
    inp = tiny.make_inputs(model, "llava")
    L = model.config.get_text_config().num_hidden_layers
    n = tiny.n_image_tokens(model, "llava")
    keep = inp["attention_mask"].bool() & ~_vision(model, inp)
    with prune(model, Policy()) as session:
        with pytest.raises(RuntimeError, match="run the model inside this session first"):
            session.logits_from_layer(1, torch.zeros(1), keep)
        out = model(**inp, output_hidden_states=True)
        with pytest.raises(ValueError, match="last token"):
            session.logits_from_layer(1, out.hidden_states[1], keep & False)
        with pytest.raises(ValueError, match="outside"):
            session.logits_from_layer(L, out.hidden_states[1], keep)
        with pytest.raises(ValueError, match="do not match"):
            session.logits_from_layer(1, out.hidden_states[1][:1], keep)
    with prune(model, PlanPolicy(Plan.drop_at(L, n, 1, 1))) as session:
        out = model(**inp, output_hidden_states=True)
        with pytest.raises(RuntimeError, match="unpruned prefill"):
            session.logits_from_layer(2, out.hidden_states[2], keep)
