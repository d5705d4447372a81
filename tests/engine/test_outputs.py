"""What a forward returns: under keep-all every output (loss, logits, per-layer hidden states and
attentions, the cache) is the unpatched model's, bit for bit; pruned, the outputs after a pruning
step are shorter by the dropped tokens (as the README states), and `labels` give the loss over the
surviving positions, each predicting the input's next token (with `logits_to_keep`: refused)."""
import pytest
import torch

from vtr import tiny
from vtr.engine import Policy, UnsupportedInput, prune

from .helpers import BANNED, half_from

OUT = dict(output_attentions=True, output_hidden_states=True)


def setup(arch):
    model = tiny.build(arch)
    model.set_attn_implementation("eager")  # sdpa returns no attention probabilities
    inputs = tiny.make_inputs(model, arch, batch=2)
    return model, inputs, tiny.n_image_tokens(model, arch)


def text_labels(inputs, k):
    """Labels on the last k tokens only (text after the image in every sample), -100 elsewhere."""
    labels = torch.full_like(inputs["input_ids"], -100)
    labels[:, -k:] = inputs["input_ids"][:, -k:]
    return labels


@pytest.mark.parametrize("arch", tiny.ARCHITECTURES)
@torch.no_grad()
def test_keep_all_outputs_equal_the_unpatched_model(arch):
    model, inputs, _ = setup(arch)
    labels = torch.where(inputs["attention_mask"].bool(), inputs["input_ids"], -100)
    ref = model(**inputs, labels=labels, **OUT)
    with prune(model, Policy()):
        got = model(**inputs, labels=labels, **OUT)
        as_tuple = model(**inputs, labels=labels, return_dict=False)
    assert torch.equal(got.loss, ref.loss) and torch.equal(as_tuple[0], ref.loss)
    assert torch.equal(got.logits, ref.logits)
    for name in ("hidden_states", "attentions"):
        assert len(got[name]) == len(ref[name])
        for a, b in zip(got[name], ref[name]):
            assert torch.equal(a, b)
    for a, b in zip(got.past_key_values.layers, ref.past_key_values.layers):
        assert torch.equal(a.keys, b.keys) and torch.equal(a.values, b.values)


@pytest.mark.parametrize("arch", tiny.ARCHITECTURES)
@torch.no_grad()
def test_keep_all_generate_outputs_equal_the_unpatched_model(arch):
    model, inputs, _ = setup(arch)
    inputs.pop("position_ids", None)
    kw = dict(max_new_tokens=3, do_sample=False, return_dict_in_generate=True, output_logits=True,
              pad_token_id=tiny.PAD, suppress_tokens=BANNED, **OUT)
    ref = model.generate(**inputs, **kw)
    with prune(model, Policy()):
        got = model.generate(**inputs, **kw)
    assert torch.equal(got.sequences, ref.sequences)
    for a, b in zip(got.logits, ref.logits):
        assert torch.equal(a, b)
    for name in ("hidden_states", "attentions"):
        for step_a, step_b in zip(got[name], ref[name]):
            for a, b in zip(step_a, step_b):
                assert torch.equal(a, b)


@pytest.mark.parametrize("arch", tiny.ARCHITECTURES)
@torch.no_grad()
def test_pruned_outputs_are_shorter_by_the_dropped_tokens(arch):
    model, inputs, n = setup(arch)
    B, T = inputs["input_ids"].shape
    short = T - (n - n // 2)  # every sample drops the same number of vision tokens from layer 1
    with prune(model, half_from(1, model, arch)):
        out = model(**inputs, **OUT)
    assert out.logits.shape[:2] == (B, short)
    # hidden_states[0] enters layer 0, hidden_states[i] leaves layer i - 1: layer 0 saw every token
    assert [h.shape[1] for h in out.hidden_states] == [T, T] + [short] * (len(out.hidden_states) - 2)
    assert [a.shape[-2:] for a in out.attentions] == [(T, T)] + [(short, short)] * (len(out.attentions) - 1)
    lengths = [layer.keys.shape[-2] for layer in out.past_key_values.layers]
    assert lengths == [T] + [short] * (len(out.attentions) - 1)


@pytest.mark.parametrize("arch", tiny.ARCHITECTURES)
@torch.no_grad()
def test_pruned_loss_is_over_the_surviving_positions(arch):
    """The last k + 1 positions are text (never pruned) and the last rows of the pruned output: the
    loss of labels on the last k tokens is the cross-entropy of those rows, each predicting the next."""
    model, inputs, n = setup(arch)
    k = 2
    labels = text_labels(inputs, k)
    with prune(model, half_from(1, model, arch)):
        out = model(**inputs, labels=labels)
    assert out.logits.shape[1] < inputs["input_ids"].shape[1]  # pruned
    rows = out.logits[:, -k - 1:-1].float()
    ref = torch.nn.functional.cross_entropy(rows.reshape(-1, rows.shape[-1]), labels[:, -k:].reshape(-1))
    torch.testing.assert_close(out.loss, ref, rtol=0, atol=1e-6)


@torch.no_grad()
def test_labels_with_logits_to_keep_are_refused_before_the_forward():
    model, inputs, n = setup("llava")
    ran = []
    handle = model.model.register_forward_pre_hook(lambda *a: ran.append(1))
    try:
        with pytest.raises(UnsupportedInput, match="labels with logits_to_keep"):
            with prune(model, half_from(1, model, "llava")):
                model(**inputs, labels=text_labels(inputs, 2), logits_to_keep=1)
    finally:
        handle.remove()
    assert not ran
