"""Every input the model accepts: pre-shifted `shift_labels`, `inputs_embeds` without `input_ids`,
samples without image tokens and right padding. Under keep-all each gives the unpatched model's
outputs bit for bit; pruned, `shift_labels` give the loss over the surviving positions, image
positions are found in `inputs_embeds` as transformers finds them, a sample without an image
passes through whole while the others are pruned, and right padding (2-D or 4-D mask) or a custom
4-D mask is refused in one line, before a pruned layer runs."""
import pytest
import torch

from vtr import tiny
from vtr.engine import Policy, UnsupportedInput, prune

from .helpers import BANNED, assert_close, assert_same, half_from

GEN = dict(max_new_tokens=3, do_sample=False, return_dict_in_generate=True, output_scores=True,
           pad_token_id=tiny.PAD, suppress_tokens=BANNED)


def _rows(inputs):
    """Each sample's tokens without padding."""
    return [ids[m.bool()].tolist() for ids, m in zip(inputs["input_ids"], inputs["attention_mask"])]


def _batch(inputs, arch, rows, side="left"):
    """`inputs` with its token rows replaced by `rows`, padded on `side` (image inputs kept)."""
    width = max(map(len, rows))
    ids = torch.full((len(rows), width), tiny.PAD, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, r in enumerate(rows):
        cols = slice(width - len(r), width) if side == "left" else slice(0, len(r))
        ids[i, cols], mask[i, cols] = torch.tensor(r), 1
    out = {k: v for k, v in inputs.items() if k not in ("input_ids", "attention_mask", "position_ids",
                                                         "mm_token_type_ids")}
    out.update(input_ids=ids, attention_mask=mask)
    if arch == "qwen2_vl":
        out["mm_token_type_ids"] = (ids == tiny.IMAGE_TOKEN).long()
    elif "position_ids" in inputs:
        out["position_ids"] = (mask.cumsum(1) - 1).clamp_min(0)
    return out


def setup(arch):
    model = tiny.build(arch)
    return model, tiny.make_inputs(model, arch, batch=2), tiny.n_image_tokens(model, arch)


def mixed(inputs, arch, length: int = 6):
    """The two image samples with a text-only one (no image tokens) between them: row 1."""
    gen = torch.Generator().manual_seed(1)
    text = [1] + torch.randint(2, tiny.IMAGE_TOKEN, (length,), generator=gen).tolist()
    first, second = _rows(inputs)
    return _batch(inputs, arch, [first, text, second])


def right_padded(inputs, arch):
    return _batch(inputs, arch, _rows(inputs), side="right")


def embeds_only(model, inputs):
    """inputs_embeds (the token embeddings, image tokens' included) instead of input_ids."""
    out = {k: v for k, v in inputs.items() if k != "input_ids"}
    out["inputs_embeds"] = model.get_input_embeddings()(inputs["input_ids"]).detach()
    return out


def for_generate(inputs):
    return {k: v for k, v in inputs.items() if k != "position_ids"}  # generate() computes positions


def assert_same_forward(got, ref):
    assert (got.loss is None) == (ref.loss is None)
    if ref.loss is not None:
        assert torch.equal(got.loss, ref.loss)
    assert torch.equal(got.logits, ref.logits)
    for a, b in zip(got.past_key_values.layers, ref.past_key_values.layers):
        assert torch.equal(a.keys, b.keys) and torch.equal(a.values, b.values)


def shift_labels_for(inputs, seed: int):
    """Pre-shifted labels (the label each input column predicts): random tokens, -100 on padding."""
    gen = torch.Generator().manual_seed(seed)
    labels = torch.randint(2, tiny.IMAGE_TOKEN, inputs["input_ids"].shape, generator=gen)
    return labels.masked_fill(~inputs["attention_mask"].bool(), -100)


# ---------------------------------------------------------------------- keep-all: the unpatched outputs
@pytest.mark.parametrize("arch", tiny.ARCHITECTURES)
@torch.no_grad()
def test_keep_all_with_shift_labels_equals_the_unpatched_model(arch):
    model, inputs, _ = setup(arch)
    labels = torch.where(inputs["attention_mask"].bool(), inputs["input_ids"], -100)
    losses = []
    for seed in (0, 1):
        kw = dict(labels=labels, shift_labels=shift_labels_for(inputs, seed))
        ref = model(**inputs, **kw)
        with prune(model, Policy()):
            got = model(**inputs, **kw)
        assert_same_forward(got, ref)
        losses.append(got.loss)
    assert not torch.equal(*losses)  # the loss is the one of the shift_labels, not of the labels


@pytest.mark.parametrize("arch", tiny.ARCHITECTURES)
@pytest.mark.parametrize("case", ["inputs_embeds", "text_only_sample", "right_padding"])
@torch.no_grad()
def test_keep_all_forward_equals_the_unpatched_model(arch, case):
    model, inputs, _ = setup(arch)
    inputs = {"inputs_embeds": lambda: embeds_only(model, inputs),
              "text_only_sample": lambda: mixed(inputs, arch),
              "right_padding": lambda: right_padded(inputs, arch)}[case]()
    ref = model(**inputs)
    with prune(model, Policy()):
        got = model(**inputs)
    assert_same_forward(got, ref)


@pytest.mark.parametrize("arch", tiny.ARCHITECTURES)
@pytest.mark.parametrize("case", ["inputs_embeds", "inputs_embeds_static", "inputs_embeds_beams",
                                  "text_only_sample", "right_padding", "right_padding_static"])
@torch.no_grad()
def test_keep_all_generate_equals_the_unpatched_model(arch, case):
    """`_static`: a static cache, whose prefill gets a 4-D mask (or a dict of them) instead of the 2-D one."""
    model, inputs, _ = setup(arch)
    kw = dict(GEN)
    if case.endswith("_static"):
        kw["cache_implementation"] = "static"
    if case.endswith("_beams"):
        kw["num_beams"] = 2
    if case.startswith("inputs_embeds"):
        inputs = embeds_only(model, inputs)
    elif case == "text_only_sample":
        inputs = mixed(inputs, arch)
    else:
        inputs = right_padded(inputs, arch)
    inputs = for_generate(inputs)
    ref = model.generate(**inputs, **kw)
    with prune(model, Policy()):
        got = model.generate(**inputs, **kw)
    assert_same(got, ref)


@pytest.mark.parametrize("arch", tiny.ARCHITECTURES)
@torch.no_grad()
def test_a_batch_without_images_passes_through_a_pruning_policy(arch):
    """A text-only turn inside a `prune` block: nothing to prune, the unpatched model's outputs."""
    model, inputs, _ = setup(arch)
    gen = torch.Generator().manual_seed(2)
    rows = [[1] + torch.randint(2, tiny.IMAGE_TOKEN, (n,), generator=gen).tolist() for n in (5, 8)]
    text = _batch({}, arch, rows)
    ref = model(**text)
    with prune(model, half_from(1, model, arch)):
        got = model(**text)
        sequences = model.generate(**for_generate(text), **GEN)
    assert_same_forward(got, ref)
    assert_same(sequences, model.generate(**for_generate(text), **GEN))


# ---------------------------------------------------------------------- pruned
@pytest.mark.parametrize("arch", tiny.ARCHITECTURES)
@torch.no_grad()
def test_pruned_loss_with_shift_labels_is_over_the_surviving_positions(arch):
    """Each output row is the input column `origin` says it holds; its label is that column's shift label."""
    model, inputs, n = setup(arch)
    labels = torch.where(inputs["attention_mask"].bool(), inputs["input_ids"], -100)
    shift = shift_labels_for(inputs, 0)
    with prune(model, half_from(1, model, arch)) as session:
        out = model(**inputs, labels=labels, shift_labels=shift)
        from_labels = model(**inputs, labels=labels).loss
        origin, valid = session.state.origin, session.state.valid
    assert out.logits.shape[1] < inputs["input_ids"].shape[1]  # pruned
    target = torch.gather(shift, 1, origin).masked_fill(~valid, -100)
    rows = out.logits.flatten(0, 1).float()
    ref = torch.nn.functional.cross_entropy(rows, target.flatten())  # -100 (padding): ignored
    torch.testing.assert_close(out.loss, ref, rtol=0, atol=1e-6)
    assert not torch.allclose(out.loss, from_labels)


@pytest.mark.parametrize("arch", tiny.ARCHITECTURES)
@torch.no_grad()
def test_a_mixed_batch_prunes_its_image_samples_and_leaves_the_text_only_one(arch):
    model, inputs, n = setup(arch)
    batch = mixed(inputs, arch)
    length = int(batch["attention_mask"][1].sum())
    ref = model(**batch)
    with prune(model, half_from(1, model, arch)) as session:
        out = model(**batch)
        stats = session.last_stats
        alone = model(**inputs).logits  # the image samples without the text-only one
    vision = stats["vision_counts"]  # (B, layers)
    assert vision[[0, 2], 0].tolist() == [n, n] and vision[[0, 2], -1].tolist() == [n // 2, n // 2]
    assert vision[1].tolist() == [0] * vision.shape[1]
    assert stats["token_counts"][1].tolist() == [length] * vision.shape[1]
    # the text-only row: every position, as unpatched (another padding width: float rounding only)
    torch.testing.assert_close(out.logits[1, -length:], ref.logits[1, -length:], rtol=0, atol=1e-5)
    # the image rows: what pruning them alone gives
    torch.testing.assert_close(out.logits[[0, 2], -1], alone[:, -1], rtol=0, atol=1e-5)
    assert not torch.allclose(out.logits[[0, 2], -1], ref.logits[[0, 2], -1], rtol=0, atol=1e-5)


@pytest.mark.parametrize("arch", tiny.ARCHITECTURES)
@torch.no_grad()
def test_a_mixed_batch_generates_the_text_only_sample_as_unpatched(arch):
    model, inputs, n = setup(arch)
    batch = for_generate(mixed(inputs, arch))
    ref = model.generate(**batch, **GEN)
    with prune(model, half_from(1, model, arch)):
        got = model.generate(**batch, **GEN)
    assert torch.equal(got.sequences[1], ref.sequences[1])
    for a, b in zip(got.scores, ref.scores):
        finite = torch.isfinite(b[1])
        torch.testing.assert_close(a[1][finite], b[1][finite], rtol=0, atol=1e-5)


@torch.no_grad()
def test_an_encoder_side_method_reduces_the_images_of_a_mixed_batch():
    from vtr.methods import get, model_info

    model, inputs, n = setup("llava")
    batch = mixed(inputs, "llava")
    length = int(batch["attention_mask"][1].sum())
    policy = get("visionzip")(model_info(model, n, 4), budget=0.5)
    ref = model(**batch)
    with prune(model, policy) as session:
        out = model(**batch)
        kept = session.last_stats["vision_counts"][:, 0].tolist()
        alone = model(**inputs).logits
    assert kept == [n // 2, 0, n // 2]
    torch.testing.assert_close(out.logits[1, -length:], ref.logits[1, -length:], rtol=0, atol=1e-5)
    torch.testing.assert_close(out.logits[[0, 2], -1], alone[:, -1], rtol=0, atol=1e-5)


class Recording(Policy):
    """Wraps a policy; records the image positions the engine marked at layer 0 of each prefill."""

    def __init__(self, inner):
        self.inner, self.vision = inner, []

    def start(self, batch_size):
        self.inner.start(batch_size)

    def keep_before(self, layer, view):
        if layer == 0:
            self.vision.append(view.vision.clone())
        return self.inner.keep_before(layer, view)


@pytest.mark.parametrize("arch", tiny.ARCHITECTURES)
@torch.no_grad()
def test_pruned_inputs_embeds_equal_pruned_input_ids(arch):
    """The image positions found in inputs_embeds are those of the image tokens: the same selection,
    and the same outputs wherever the unpatched model gives the same for both (Qwen2-VL computes its
    M-RoPE positions from input_ids, so without them its own outputs differ)."""
    model, inputs, n = setup(arch)
    embeds = embeds_only(model, inputs)
    policy = Recording(half_from(1, model, arch))
    with prune(model, policy) as session:
        by_ids = model(**inputs)
        by_embeds = model(**embeds)
        assert session.last_stats["vision_counts"][:, -1].tolist() == [n // 2] * 2
        gen_ids = model.generate(**for_generate(inputs), **GEN)
        gen_embeds = model.generate(**for_generate(embeds), **GEN)
    image = (inputs["input_ids"] == tiny.IMAGE_TOKEN) & inputs["attention_mask"].bool()
    assert len(policy.vision) == 4 and all(torch.equal(v, image) for v in policy.vision)
    assert by_embeds.logits.shape[1] < inputs["input_ids"].shape[1]  # pruned
    if torch.equal(model(**inputs).logits, model(**embeds).logits):
        assert torch.equal(by_embeds.logits, by_ids.logits)
        # generate() returns only the new tokens for inputs_embeds
        gen_ids.sequences = gen_ids.sequences[:, inputs["input_ids"].shape[1]:]
        assert_close(gen_embeds, gen_ids)


@pytest.mark.parametrize("arch", tiny.ARCHITECTURES)
@pytest.mark.parametrize("form", ["2-D mask", "4-D mask"])
@torch.no_grad()
def test_right_padding_is_refused_before_a_pruned_layer_runs(arch, form):
    model, inputs, n = setup(arch)
    batch = for_generate(right_padded(inputs, arch))
    entered = []  # layers that ran
    handles = [layer.register_forward_hook(lambda m, a, o, i=i: entered.append(i))
               for i, layer in enumerate(model.model.language_model.layers)]
    try:
        with pytest.raises(UnsupportedInput, match="right padding.*pad on the left"):
            with prune(model, half_from(1, model, arch)):
                if form == "2-D mask":
                    model(**batch)
                else:  # a static cache: the decoder gets a 4-D mask (or a dict of them)
                    model.generate(**batch, **GEN, cache_implementation="static")
    finally:
        for h in handles:
            h.remove()
    assert entered == [0]  # refused before layer 1 ran, the first one that would see fewer tokens


@torch.no_grad()
def test_a_custom_4d_mask_passes_keep_all_and_is_refused_when_pruned():
    """A block mask (the text after the image cannot see the first two tokens): not causal with padding."""
    model = tiny.build("llava")
    inputs = tiny.make_inputs(model, "llava", batch=1)  # no padding
    T = inputs["input_ids"].shape[1]
    mask = torch.ones(T, T, dtype=torch.bool).tril()[None, None].clone()
    mask[:, :, -3:, :2] = False
    custom = dict(inputs, attention_mask=mask)
    ref = model(**custom)
    with prune(model, Policy()):
        assert_same_forward(model(**custom), ref)
    with pytest.raises(UnsupportedInput, match="not causal with padding"):
        with prune(model, half_from(1, model, "llava")):
            model(**custom)
