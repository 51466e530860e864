"""Layout-keeping reductions: the values of the plain ops, the memory order of the input."""

import pytest
import torch

from fineact.models.layout import memory_order, reduce_keepdim, sum_to_shape


def channels_last_5d(n=2, t=3, c=4, h=5, w=6):
    """A (N, T, C, H, W) view of a channels_last (N*T, C, H, W) map, as ARC sees one."""
    return torch.randn(n * t, c, h, w, dtype=torch.float64).contiguous(memory_format=torch.channels_last).view(
        n, t, c, h, w)


@pytest.mark.parametrize("op", ["sum", "mean", "amax"])
@pytest.mark.parametrize("dims", [(1,), (-2, -1), (0, 1), (2,)])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_reduce_keepdim_gives_the_plain_values(op, dims, layout):
    x = channels_last_5d()
    if layout == "contiguous":
        x = x.contiguous()
    got = reduce_keepdim(x, dims, op)
    want = getattr(x, op)(dims, keepdim=True)
    assert got.shape == want.shape and torch.allclose(got, want, atol=1e-12)
    if layout == "channels_last" and 2 not in {d % 5 for d in dims}:
        assert memory_order(got)[-1] == 2  # the channel dim is still innermost


def test_time_sum_of_a_channels_last_map_keeps_its_layout_and_gradient():
    x = channels_last_5d().requires_grad_()
    s = reduce_keepdim(x, (1,))
    assert memory_order(s)[-1] == 2
    s.backward(torch.ones_like(s))
    assert torch.equal(x.grad, torch.ones_like(x))
    assert memory_order(x.grad) == memory_order(x)


def test_sum_to_shape_is_sum_to_size():
    x = channels_last_5d()
    for shape in [(2, 1, 4, 5, 6), (2, 3, 4, 1, 1), (1, 1, 4, 1, 1), (2, 3, 4, 5, 6)]:
        assert torch.allclose(sum_to_shape(x, shape), x.sum_to_size(shape), atol=1e-12)
