"""The loss when `labels` are passed: the top-level pre-hook takes `labels` out of the call (the
model's own loss would pair the pruned logits with every label) and the post-hook returns the
output with the loss the model's own `loss_function` gives, with the keyword arguments the model
passes it (`shift_labels`, `num_items_in_batch`, ...).

Nothing pruned: on the model's logits and labels, as the model would. Pruned: over the surviving
positions, each predicting the input's next token (the label one input column after it, or the
`shift_labels` entry of its own column); a label whose predicting position was pruned drops out
(in LLaVA training those are image positions, labelled -100 anyway). `labels` with
`logits_to_keep` are refused before the forward runs (the model's own loss cannot pair them
either)."""
from __future__ import annotations

import inspect

import torch

from .policy import UnsupportedInput


class SurvivorLoss:
    """Holds one call's labels from the top-level pre-hook to its post-hook."""

    def __init__(self, model):
        self.model = model
        # the model's named forward arguments: the others reach its loss_function
        self._forward_params = set(inspect.signature(model.forward).parameters) - {"kwargs"}
        self._labels = None

    def take_labels(self, kwargs) -> bool:
        """Remove `labels` from the call's `kwargs` (True) to compute the loss in `output_with_loss`."""
        self._labels = None
        if kwargs.get("labels") is None:
            return False
        keep = kwargs.get("logits_to_keep")
        if not (keep is None or (isinstance(keep, int) and keep == 0)):  # the model's own loss fails too
            raise UnsupportedInput("labels with logits_to_keep: the loss needs the logits of every position "
                                   "(drop logits_to_keep)")
        extra = {k: v for k, v in kwargs.items() if k not in self._forward_params}
        self._labels = (kwargs.pop("labels"), extra)
        return True

    def output_with_loss(self, output, st):
        """The call's output with its loss, given the prefill state `st` (None: nothing ran pruned);
        None when the call had no labels."""
        if self._labels is None:
            return None
        labels, extra = self._labels
        self._labels = None
        tuple_out = isinstance(output, tuple)
        logits = output[0] if tuple_out else output.logits
        vocab = self.model.config.get_text_config().vocab_size
        if st is None or not st.changed:  # nothing removed: exactly the model's own loss
            loss = self.model.loss_function(logits=logits, labels=labels, vocab_size=vocab, **extra)
        else:
            # each surviving position predicts the input's next token (its label one column later), or
            # the label `shift_labels` gives its input column (labels already shifted by the caller)
            ignore = extra.get("ignore_index", -100)
            shifted = extra.pop("shift_labels", None)
            if shifted is None:
                shifted = torch.nn.functional.pad(labels, (0, 1), value=ignore)[:, 1:]
            target = torch.gather(shifted.to(st.origin.device), 1, st.origin).masked_fill(~st.valid, ignore)
            loss = self.model.loss_function(logits=logits, labels=None, vocab_size=vocab, shift_labels=target,
                                            **extra)
        if tuple_out:
            return (loss,) + output
        return type(output)(loss=loss, **{k: v for k, v in output.items() if k != "loss"})
