"""Every registered model names its classifier(s), and the optimiser and the weight loader ask it.

The classifiers are found here INDEPENDENTLY of the models' own answer: each model is built with class counts
that no other layer has (7 classes, or levels of 3 / 5 / 11), so its classifiers are exactly the nn.Linear
layers whose out_features is a class count.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fineact.errors import WeightsError
from fineact.engine.optim import parameter_groups
from fineact.interop import load_weights
from fineact.models import build_model, get_entry, list_models

NUM_CLASSES = 7
LEVELS = {"event": 3, "set": 5, "element": 11}
LR, WEIGHT_MULT, BIAS_MULT = 0.1, 5.0, 10.0

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_kwargs(name: str) -> dict:
    """The smallest build each builder allows: depth 18, 8 channels, few frames, distinctive class counts."""
    accepted = get_entry(name).accepted_arguments()
    wanted = {"num_classes": NUM_CLASSES, "levels": dict(LEVELS), "depth": 18, "pathway_depth": 18,
              "base_channels": 8, "num_segments": 2, "num_frames": 8, "alpha": 4, "beta_inv": 4,
              "pathway_clips": {"event": (2, 16), "set": (4, 8), "element": (8, 2)}}
    return {k: v for k, v in wanted.items() if k in accepted}


def class_count_linears(model: nn.Module) -> dict[str, nn.Linear]:
    counts = {NUM_CLASSES, *LEVELS.values()}
    return {name: m for name, m in model.named_modules() if isinstance(m, nn.Linear) and m.out_features in counts}


@pytest.fixture(scope="module", params=list_models())
def model(request):
    torch.manual_seed(0)
    return build_model(request.param, **tiny_kwargs(request.param))


def test_classifier_parameters_take_the_multiplied_learning_rates(model):
    expected = class_count_linears(model)
    assert expected, f"{model.registry_name}: the test found no classifier"
    groups = {g["name"]: g for g in parameter_groups(model, LR, 1e-4, classifier_lr_mult=WEIGHT_MULT,
                                                     classifier_bias_lr_mult=BIAS_MULT)}
    weights = {id(p) for p in groups["classifier_weight"]["params"]}
    biases = {id(p) for p in groups["classifier_bias"]["params"]}
    assert weights == {id(fc.weight) for fc in expected.values()}
    assert biases == {id(fc.bias) for fc in expected.values()}
    assert groups["classifier_weight"]["lr"] == pytest.approx(LR * WEIGHT_MULT)
    assert groups["classifier_bias"]["lr"] == pytest.approx(LR * BIAS_MULT)
    for name in ("decay", "no_decay"):
        others = {id(p) for p in groups[name]["params"]}
        assert not others & (weights | biases) and groups[name]["lr"] == pytest.approx(LR)


def test_the_loader_reinitialises_exactly_the_classifier(model, tmp_path):
    """A file whose classifiers have another class count loads, naming each classifier; any other layer of another
    shape is an error."""
    expected = class_count_linears(model)
    assert set(model.get_classifier()) == set(expected)
    state = model.state_dict()
    other = {k: torch.zeros(v.shape[0] + 1, *v.shape[1:]) if any(k.startswith(f"{name}.") for name in expected)
             else v for k, v in state.items()}
    path = tmp_path / "other_classes.pth"
    torch.save(other, path)
    report = load_weights(model, path, source="fineact")
    assert sorted(r.split(" (")[0] for r in report.reinitialised) == sorted(expected)
    assert set(report.loaded) == {k for k in state if not any(k.startswith(f"{n}.") for n in expected)}

    # The last layer that is not a classifier (an encoder / fusion layer, or the last backbone conv) may not differ.
    key = [k for k in state if k.endswith("weight") and state[k].dim() >= 2
           and not any(k.startswith(f"{n}.") for n in expected)][-1]
    wrong = dict(state)
    wrong[key] = torch.zeros(state[key].shape[0] + 1, *state[key].shape[1:])
    torch.save(wrong, path)
    with pytest.raises(WeightsError, match=f"shape mismatch keys: {key}"):
        load_weights(model, path, source="fineact")
