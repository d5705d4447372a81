"""A method option value the method does not accept (from `vtr eval --hp`, a budget, or the API) is
a `MethodOptionError`, an `InputError`: one line naming the option, the value and what is accepted.
Inconsistent internal state (a bug) stays a plain exception."""
import pytest
import torch

from vtr.errors import InputError
from vtr.methods import get
from vtr.methods import cls_knee, prumerge, tome, visionzip
from vtr.methods.base import MethodOptionError, check_layers

from .helpers import BIG

# (method, hyper-parameters, text the message must hold: the option and its value, then what is accepted)
ROWS = [
    ("visionzip", dict(merge="foo"), "merge='foo'", "mean, target_plus_mean"),
    ("visionzip", dict(dominant=-3), "dominant=-3", "integer >= 0"),
    ("visionzip", dict(dominant=0, contextual=0), "dominant=0", "dominant + contextual"),
    ("fastv", dict(K=33), "K=33", "0..32"),
    ("fastv", dict(K="two"), "K='two'", "integer"),
    ("fastv", dict(R=-0.5), "R=-0.5", "[0.0, 1.0]"),
    ("random", dict(R=2), "method random: R=2", "[0.0, 1.0]"),
    ("uniform", dict(K=1.5), "method uniform: K=1.5", "integer"),
    ("pdrop", dict(lam=1.5), "lam=1.5", "[0.0, 1.0]"),
    ("pdrop", dict(layers="8,x"), "layers='8,x'", "increasing layer indices in 0..32"),
    ("pdrop", dict(layers=(16, 8)), "layers=(16, 8)", "increasing"),
    ("pdrop", dict(scale_to_input="yes"), "scale_to_input='yes'", "true or false"),
    ("prumerge", dict(neighbours="near"), "neighbours='near'", "pruned, all"),
    ("prumerge", dict(update="max"), "update='max'", "average, residual_sum"),
    ("prumerge", dict(k_neighbours=0), "k_neighbours=0", ">= 1"),
    ("prumerge", dict(min_keep=0), "min_keep=0", ">= 1"),
    ("prumerge_plus", dict(outlier_share=1.5), "method prumerge_plus: outlier_share=1.5", "(0.0, 1.0]"),
    ("cls_knee", dict(score="norm"), "score='norm'", "similarity, attention"),
    ("cls_knee", dict(detector="elbow"), "detector='elbow'", "kneedle"),
    ("cls_knee", dict(detector="cumulative_mass", mass=0), "mass=0", "(0.0, 1.0]"),
    ("cls_knee", dict(min_keep=0), "min_keep=0", ">= 1"),
    ("cls_knee", dict(stage2_ratio=-1), "stage2_ratio=-1", ">= 0"),
    ("cls_knee", dict(stage2_layer=32), "stage2_layer=32", "'auto'"),
    ("cls_knee", dict(stage2_layer="late"), "stage2_layer='late'", "'auto'"),
    ("cls_knee", dict(stage2="maybe"), "stage2='maybe'", "true or false"),
    ("sparsevlm", dict(setting=100), "setting=100", "64, 128, 192"),
    ("sparsevlm", dict(layers="2,40"), "layers='2,40'", "0..31"),
    ("sparsevlm", dict(counts="a,b,c"), "counts='a,b,c'", "token counts"),
    ("sparsevlm", dict(recycle=True), "recycle=True", "false"),
    ("vtw", dict(K=-1), "K=-1", "0..32"),
    ("vtw", dict(eta=0.1), "eta=0.1", "logits_fn"),
    ("vtw", dict(K=3, eta=0.1, logits_fn=lambda k: None), "K=3", "KL rule"),
    ("dyvte", dict(threshold=1.5), "threshold=1.5", "[0.0, 1.0]"),
    ("dart", dict(K=33), "method dart: K=33", "0..32"),
    ("dart", dict(R=1.5), "method dart: R=1.5", "[0.0, 1.0]"),
    ("dart", dict(pivot_image=-1), "pivot_image=-1", "integer >= 0"),
    ("dart", dict(pivot_text=2.5), "pivot_text=2.5", "integer >= 0"),
    ("dart", dict(pivot_image=0, pivot_text=0), "pivot_image=0", "pivot_image + pivot_text >= 1"),
    ("dart", dict(scale_to_input="yes"), "scale_to_input='yes'", "true or false"),
    ("downsample", dict(resample="nearest"), "resample='nearest'", "bicubic, bilinear, area"),
]


@pytest.mark.parametrize("method,hp,named,accepted", ROWS, ids=[f"{r[0]}-{r[2]}" for r in ROWS])
def test_a_bad_hyper_parameter_value_is_one_line_naming_the_option(method, hp, named, accepted):
    with pytest.raises(MethodOptionError) as err:
        get(method)(BIG, **hp)
    message = str(err.value)
    assert isinstance(err.value, InputError) and "\n" not in message
    assert f"method {method}" in message and named in message and accepted in message, message


@pytest.mark.parametrize("method", ["fastv", "visionzip", "vtw", "pdrop", "dart", "divprune", "pool",
                                    "downsample"])
@pytest.mark.parametrize("budget,kind,named", [(1.5, "keep", "budget=1.5"), (0.5, "tokens", "'tokens'"),
                                                ("half", "keep", "budget='half'")])
def test_a_bad_budget_or_kind_is_one_line(method, budget, kind, named):
    with pytest.raises(MethodOptionError, match=named):
        get(method)(BIG, budget=budget, kind=kind)


def test_the_routers_of_another_depth_are_refused_naming_them():
    from vtr.methods.dyvte import DyVTEPolicy, Routers

    policy = DyVTEPolicy(Routers(3, 8, 4))
    with pytest.raises(MethodOptionError, match="routers.*4 layers"):
        policy.check_model(4)


def test_cli_text_values_are_read_as_layer_lists():
    assert check_layers("pdrop", "layers", "8, 16,24", 0, 32) == (8, 16, 24)
    assert check_layers("pdrop", "layers", 8, 0, 32) == (8,)
    assert get("pdrop")(BIG, layers="8,16,24").plan == get("pdrop")(BIG, layers=(8, 16, 24)).plan
    assert get("sparsevlm")(BIG, layers="2,6,15", counts="300,200,110").plan == \
        get("sparsevlm")(BIG, layers=(2, 6, 15), counts=(300, 200, 110)).plan


def test_internal_inconsistencies_stay_plain_exceptions():
    """Counts the methods compute themselves, out of range: a bug, not a user's input."""
    x = torch.zeros(2, 6, 4)
    uneven = torch.tensor([[1, 1, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0]]).bool()  # remaining tokens per sample
    for call in (lambda: visionzip.contextual_merge(x, x, uneven, 1),
                 lambda: tome.tome_merge(x, x, 7),
                 lambda: prumerge.evenly_spaced(torch.zeros(1, 4, dtype=torch.bool), torch.tensor([2])),
                 lambda: cls_knee.kneedle(torch.zeros(2, 2, 2))):
        with pytest.raises(ValueError) as err:
            call()
        assert not isinstance(err.value, InputError)
