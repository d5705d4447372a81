"""The one base class of errors a user causes and can correct (a bad plan, budget, model path,
split, trace, unsupported model or input). The CLI prints these as one line `vtr: error: ...`
and exits 2; any other exception is a bug and keeps its traceback."""
from __future__ import annotations


class InputError(ValueError):
    """Bad input, named in the message with what would be accepted."""
