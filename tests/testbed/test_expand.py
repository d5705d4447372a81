"""Block expansion: a deeper decoder initialised from a trained one computes exactly what it computes."""
import pytest
import torch

from vtr.testbed import expand as T
from vtr.testbed.model import TestbedSpec, build_model

SPEC = dict(vision_hidden=32, vision_layers=1, vision_heads=2, text_hidden=32, text_heads=2,
            text_intermediate=64)


@torch.no_grad()
def test_expanded_decoder_computes_what_its_source_computes():
    source = build_model(TestbedSpec(**SPEC, text_layers=2), seed=1).eval()
    deep = build_model(TestbedSpec(**SPEC, text_layers=4), seed=2).eval()
    deep.model.vision_tower.load_state_dict(source.model.vision_tower.state_dict())
    T.expand_decoder(deep, source)
    ids = torch.tensor([[2] + [4] * 144 + [5, 6, 7]])
    px = torch.randn(1, 3, 96, 96)
    a = source(input_ids=ids, pixel_values=px).logits
    b = deep(input_ids=ids, pixel_values=px).logits
    torch.testing.assert_close(b, a, rtol=0, atol=1e-5)
    # the copy starts at zero
    assert not torch.equal(deep.model.language_model.layers[1].self_attn.o_proj.weight,
                           deep.model.language_model.layers[0].self_attn.o_proj.weight)


def test_expansion_needs_a_multiple_of_the_source_depth():
    source = build_model(TestbedSpec(**SPEC, text_layers=2))
    with pytest.raises(ValueError, match="multiple"):
        T.expand_decoder(build_model(TestbedSpec(**SPEC, text_layers=3)), source)
