"""The last token of every sample is never pruned, also when the prompt ends with the image: the
output's last row stays the prompt's last position (else `logits[:, -1]` would silently come from
another token)."""
import pytest
import torch

from vtr import tiny
from vtr.engine import PlanPolicy, prune
from vtr.plan import Plan


@pytest.mark.parametrize("arch", tiny.ARCHITECTURES)
@pytest.mark.parametrize("keep", [1, 0])
@torch.no_grad()
def test_a_prompt_ending_with_the_image_keeps_its_last_position(arch, keep):
    model = tiny.build(arch)
    inputs = tiny.make_inputs(model, arch, batch=2, text_lengths=[0, 0])  # <bos> <image>*N (then nothing)
    n = tiny.n_image_tokens(model, arch)
    L = model.config.get_text_config().num_hidden_layers
    with prune(model, PlanPolicy(Plan.drop_at(L, n, 1, keep))) as session:
        out = model(**inputs, use_cache=False)
        st = session.state
        last_pos = (st.pos if st.pos.ndim == 2 else st.pos[0])[:, -1]
        last_index = st.vision_index[:, -1]
    T = inputs["input_ids"].shape[1]
    full_pos = inputs["position_ids"][:, -1] if "position_ids" in inputs else None
    assert out.logits.shape[1] < T  # pruned
    if full_pos is not None:
        assert torch.equal(last_pos, full_pos)
    if inputs["input_ids"][0, -1] == tiny.IMAGE_TOKEN:  # the last token is an image token: it survived
        assert torch.equal(last_index, torch.full_like(last_index, n - 1))
    assert torch.isfinite(out.logits[:, -1]).all()
