"""The fused eq.-5 state update: same values and gradients as plain autograd, less kept for backward."""

import pytest
import torch
import torch.nn.functional as F

from fineact.models.arc_state import _upsample_backward, update_state, upsample_nearest
from fineact.models.layout import memory_order

# (E shape, A_t shape, A_s shape, F shape): 2D layout (N, T, C, H, W) and 3D layout (N, C, T, H, W)
CASES = {
    "2d same resolution": ((2, 3, 4, 6, 6), (2, 1, 4, 6, 6), (2, 3, 4, 1, 1), (2, 3, 4, 6, 6)),
    "2d stride 2": ((2, 3, 4, 6, 8), (2, 1, 4, 3, 4), (2, 3, 4, 1, 1), (2, 3, 4, 3, 4)),
    "3d stride 2": ((2, 4, 3, 8, 6), (2, 4, 1, 4, 3), (2, 4, 3, 1, 1), (2, 4, 3, 4, 3)),
    "3d same resolution": ((1, 4, 2, 5, 5), (1, 4, 1, 5, 5), (1, 4, 2, 1, 1), (1, 4, 2, 5, 5)),
    "2d odd size (7 from 4)": ((1, 2, 3, 7, 7), (1, 1, 3, 4, 4), (1, 2, 3, 1, 1), (1, 2, 3, 4, 4)),
}


def reference(embedded, att_t, att_s, fusion):
    """Eq. 5 written with F.interpolate and broadcasting."""
    full = embedded.shape[-2:]

    def up(t):
        return F.interpolate(t.flatten(0, 1), size=full, mode="nearest").view(*t.shape[:-2], *full)

    return torch.relu(torch.relu(embedded + up(att_t) + att_s) + up(fusion))


def leaves(shapes, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=generator, dtype=torch.float64).requires_grad_() for s in shapes]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("fused", [True, False])
def test_update_matches_the_equation_with_gradients(case, fused):
    inputs = leaves(CASES[case])
    out = update_state(*inputs, fused=fused)
    weights = torch.randn(out.shape, dtype=torch.float64)
    grads = torch.autograd.grad((out * weights).sum(), inputs)
    ref_inputs = [t.detach().clone().requires_grad_() for t in inputs]
    ref = reference(*ref_inputs)
    ref_grads = torch.autograd.grad((ref * weights).sum(), ref_inputs)
    assert out.shape == ref.shape
    assert torch.allclose(out, ref, atol=1e-12)
    for got, want in zip(grads, ref_grads):
        assert got.shape == want.shape and torch.allclose(got, want, atol=1e-12)


@pytest.mark.parametrize("case", CASES)
def test_update_without_autograd_matches_the_equation(case):
    """Inference builds Z in place (and upsamples by strided copies): the same values as eq. 5."""
    inputs = [t.detach() for t in leaves(CASES[case], seed=1)]
    with torch.inference_mode():
        out = update_state(*inputs, fused=False)
    assert torch.allclose(out, reference(*inputs), atol=1e-12)


def test_fused_update_passes_gradcheck():
    inputs = leaves(CASES["2d stride 2"], seed=3)
    assert torch.autograd.gradcheck(lambda *t: update_state(*t, fused=True), inputs)


def test_fused_update_keeps_a_byte_mask_instead_of_float_copies():
    inputs = [t.detach().float().requires_grad_() for t in leaves(CASES["2d same resolution"])]
    kept = {}
    for fused in (True, False):
        saved = []
        with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
            z = update_state(*inputs, fused=fused)
        kept[fused] = sum(t.numel() * t.element_size() for t in saved if t.is_floating_point() and t is not z)
        if fused:
            assert any(t.dtype == torch.bool for t in saved)
    assert kept[True] < kept[False]


@pytest.mark.parametrize("low, full", [((4, 4), (7, 7)), ((3, 4), (6, 8)), ((3, 4), (9, 12)), ((5, 4), (5, 8)),
                                       ((4, 4), (8, 8))])
def test_upsampling_and_its_gradient_follow_pytorch_nearest(low, full):
    """The strided-copy path (integer factors, no graph being recorded) and the slice sums of its gradient give
    exactly what F.interpolate and its autograd give; non-integer factors fall back to F.interpolate."""
    t = torch.randn(2, 3, 4, *low, dtype=torch.float64)
    expected = F.interpolate(t.flatten(0, 1), size=full, mode="nearest").view(2, 3, 4, *full)
    with torch.no_grad():
        assert torch.equal(upsample_nearest(t, full), expected)
    leaf = t.clone().requires_grad_()
    grad = torch.randn(2, 3, 4, *full, dtype=torch.float64)
    F.interpolate(leaf.flatten(0, 1), size=full, mode="nearest").view(2, 3, 4, *full).backward(grad)
    assert torch.allclose(_upsample_backward(grad, t.shape), leaf.grad, atol=1e-12)


def test_upsampling_follows_pytorch_nearest():
    t = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).view(2, 3, 1, 4, 4)
    expected = F.interpolate(t.flatten(0, 1), size=(7, 7), mode="nearest").view(2, 3, 1, 7, 7)
    assert torch.equal(upsample_nearest(t, (7, 7)), expected)


def channels_last_like(t, channel_dim):
    """The same values with the channel dim innermost in memory, as in a channels_last(_3d) model."""
    return t.movedim(channel_dim, -1).contiguous().movedim(-1, channel_dim)


@pytest.mark.parametrize("case", ["2d same resolution", "2d stride 2", "3d stride 2", "3d same resolution"])
@pytest.mark.parametrize("grad_mode", ["fused", "no_grad"])
def test_update_keeps_channels_last_maps_channels_last(case, grad_mode):
    """With trainer.channels_last the maps arrive channel-innermost; Z and the gradients must stay that way
    (a map in the other layout makes every later op and conv convert), with unchanged values."""
    plain = leaves(CASES[case], seed=4)
    channel_dim = 1 if case.startswith("3d") else 2
    inputs = [channels_last_like(t.detach(), channel_dim).requires_grad_() for t in plain]
    layout = memory_order(inputs[0])
    assert layout[-1] == channel_dim
    expected = reference(*[t.detach() for t in plain])
    if grad_mode == "no_grad":
        with torch.no_grad():
            out = update_state(*[t.detach() for t in inputs], fused=False)
        assert memory_order(out) == layout and torch.allclose(out, expected, atol=1e-12)
        return
    out = update_state(*inputs, fused=True)
    assert memory_order(out) == layout and torch.allclose(out, expected, atol=1e-12)
    weights = torch.randn(out.shape, dtype=torch.float64)
    grads = torch.autograd.grad((out * weights).sum(), inputs)
    ref_inputs = [t.detach().clone().requires_grad_() for t in plain]
    ref_grads = torch.autograd.grad((reference(*ref_inputs) * weights).sum(), ref_inputs)
    for got, want in zip(grads, ref_grads):
        assert torch.allclose(got, want, atol=1e-12)
    assert memory_order(grads[0]) == layout


@pytest.mark.parametrize("like", ["own", "nchw", "channels_last"])
def test_upsampling_takes_the_layout_it_is_asked_for(like):
    """The attention map arrives channel-innermost whatever the model's layout; its upsampled copy must match
    the map it is added to."""
    t = channels_last_like(torch.randn(2, 3, 4, 3, 5, dtype=torch.float64), 2)
    target = {"own": None, "nchw": torch.empty(2, 3, 4, 6, 10),
              "channels_last": channels_last_like(torch.empty(2, 3, 4, 6, 10), 2)}[like]
    with torch.no_grad():
        up = upsample_nearest(t, (6, 10), like=target)
    assert memory_order(up) == memory_order(t if target is None else target)
    assert torch.equal(up, F.interpolate(t.flatten(0, 1), size=(6, 10), mode="nearest").view(2, 3, 4, 6, 10))
