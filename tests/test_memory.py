"""`vtr.memory.PeakMemory` on CPU: the peak of tensor storages alive at once inside the block."""
import torch

from vtr.memory import PeakMemory


def test_peak_counts_live_tensors_once_and_forgets_freed_ones():
    n = 1000 * 1000 * 4  # bytes of one float32 1000 x 1000 tensor
    with PeakMemory() as m:
        a = torch.ones(1000, 1000)
        b = a * 2
        view = b.view(-1)  # shares b's storage: not counted again
        del b, view
        c = a + 1  # b is gone: the live total stays at two tensors
    assert m.peak_bytes == 2 * n
    assert c.sum() > 0


def test_tensors_made_before_the_block_are_not_counted():
    big = torch.ones(2000, 2000)
    with PeakMemory() as m:
        small = big[:10].clone()
    assert m.peak_bytes == small.numel() * 4
