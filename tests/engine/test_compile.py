"""generate() compiling its decode steps (static cache, `compile_config`). After a prefill that
removed nothing every hook is a traced no-op, so the compiled graph is the unpatched model's and
the output equals the unpatched compiled model's bit for bit, without a warning. After a pruned
prefill the hooks cannot be traced (data-dependent selection, Python state): they run eagerly
between compiled regions, after a warning that says so, and the output is the uncompiled pruned
one. The "eager" backend runs torch.compile's tracing and graph breaks without code generation
(what a CPU test can afford)."""
import warnings

import pytest
from transformers import CompileConfig

from vtr import tiny
from vtr.engine import Policy
from vtr.engine.compiled import COMPILED_WARNING

from .helpers import assert_close, assert_same, generate, half_from, setup


def compiled():
    config = CompileConfig(backend="eager", mode=None)
    config._compile_all_devices = True  # generate() compiles on CUDA-like devices only, unless told
    return dict(cache_implementation="static", compile_config=config)


@pytest.mark.parametrize("arch", tiny.ARCHITECTURES)
def test_compiled_decoding(arch):
    model, inputs, _, _ = setup(arch)
    ref = generate(model, inputs, **compiled())  # compiled before the block: prune() must retrace
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        got = generate(model, inputs, Policy(), **compiled())
    assert not [w for w in seen if str(w.message) == COMPILED_WARNING]
    assert_same(got, ref)
    with pytest.warns(RuntimeWarning, match="cannot trace the pruning hooks"):
        pruned = generate(model, inputs, half_from(1, model, arch), **compiled())
    assert_close(pruned, generate(model, inputs, half_from(1, model, arch), cache_implementation="static"))
    # after the block the compiled model runs without the hooks again
    assert_same(generate(model, inputs, **compiled()), ref)
