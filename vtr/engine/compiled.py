"""The hooks under torch.compile (generate() compiles decode steps for a static cache when a
`compile_config` allows it).

After a prefill that removed nothing, every hook of a decode step is a traced no-op, so the
compiled graph is the unpatched model's; after a pruned one the hooks cannot be traced
(data-dependent selection, Python state) and run eagerly between compiled regions, with a warning
(`fullgraph=True` cannot hold them and fails in torch). Compiled code does not notice hooks added
or removed later, so entering and leaving `prune` resets torch.compile's caches
(`torch._dynamo.reset()`, process-wide) when the model or a submodule has been compiled."""
from __future__ import annotations

import functools
import warnings

import torch

COMPILED_WARNING = ("vtr.engine: torch.compile cannot trace the pruning hooks (data-dependent selection and "
                    "Python state); they run eagerly between compiled regions (graph breaks), "
                    "with the same results")


@torch.compiler.disable
def _warn_compiled():
    warnings.warn(COMPILED_WARNING, RuntimeWarning, stacklevel=2)  # shown once per place by default


def eager(hook, idle):
    """`hook` as registered. Under torch.compile: a no-op while `idle(args, kwargs)` (a decode step
    after a prefill that removed nothing: plain Python checks on the hook's arguments, traced, so
    the graph is the unpatched model's); else it runs eagerly, outside the graph, after a warning:
    its data-dependent selection and Python state cannot be traced, and a traced copy must never
    differ."""
    eager_hook = torch.compiler.disable(hook, recursive=True)

    @functools.wraps(hook)
    def run(*args):
        if torch.compiler.is_compiling():
            if idle(*args):
                return None
            _warn_compiled()
            return eager_hook(*args)
        return hook(*args)
    return run


def reset_if_compiled(model) -> None:
    """Compiled code does not see hooks added or removed after it was traced (torch skips guards on
    module hooks): once the model or a submodule was compiled (generate()'s compile_config, or
    `Module.compile()`), drop torch.compile's caches, process-wide, so the next call retraces."""
    if hasattr(model, "_compiled_call") or any(getattr(m, "_compiled_call_impl", None) is not None
                                               for m in model.modules()):
        torch._dynamo.reset()
