"""Exporting models for deployment (fineact.interop.export_model / verify_export).

Models get random weights and BN statistics calibrated on a random clip (so logits are O(1) and every layer,
ARC's We/Wf/Wa included, contributes), are exported, and the exported graph must reproduce the eager outputs
within 1e-4 (float32) on new clips with another batch size. Full-size numbers: benchmarks/export_check.py.
"""

from __future__ import annotations

import json

import pytest
import torch

from fineact.errors import FineactError, ModelError
from fineact.interop import export_model, make_example_inputs, verify_export
from fineact.interop.export import ExportWrapper, load_exported, model_input
from fineact.interop.random_weights import calibrate_random_weights
from fineact.interop.sidecar import sidecar_path
from fineact.models import build_model, list_models

TOL = 1e-4
MULTITASK = dict(pathway_depth=18, base_channels=8, pathway_clips={"event": (2, 16), "set": (4, 8), "element": (8, 2)})


def export_and_verify(model, tmp_path, fmt: str, name: str, **kwargs) -> float:
    path = export_model(model, tmp_path / name, fmt, size=32, **kwargs)
    assert path.is_file() and sidecar_path(path).is_file()
    return verify_export(model, path, batch=3)  # another batch than the export's example (2): dynamic batch



pytestmark = pytest.mark.usefixtures("one_thread")

# -- the models the issue names --------------------------------------------------------------------------------------

CASES = {
    "tsm_r50": ("tsm_r50", dict(num_classes=174, num_segments=4)),
    "arc_tsm_r18": ("arc_tsm_r18", dict(num_classes=174, num_segments=4)),
    "slowonly_r50_small": ("slowonly_r50", dict(num_classes=400, base_channels=8)),
    "multitask_small": ("hierarchical_multitask", MULTITASK),
}


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    return {key: calibrate_random_weights(build_model(name, **kw)) for key, (name, kw) in CASES.items()}


@pytest.mark.parametrize("fmt", ["torchscript", "exported-program"])
@pytest.mark.parametrize("key", list(CASES))
def test_export_matches_eager(models, tmp_path, key, fmt):
    model = models[key]
    with torch.no_grad():
        logits = model(model_input(model, make_example_inputs(model, size=32, batch=2)))
    scale = max(t.abs().max().item() for t in (logits.values() if isinstance(logits, dict) else [logits]))
    assert 0.1 < scale < 1e3  # calibrated: the comparison below is meaningful
    assert export_and_verify(model, tmp_path, fmt, key) < TOL


def _needs_onnx():
    for module in ("onnx", "onnxscript", "onnxruntime"):
        pytest.importorskip(module, reason=f"ONNX export tests need {module} (pip install 'fineact[export]')")


@pytest.mark.parametrize("key", ["arc_tsm_r18_res5", "multitask_small"])
def test_onnx_export_runs_in_onnxruntime(models, tmp_path, key):
    _needs_onnx()
    # ARC on res5 only keeps the suite fast; benchmarks/export_check.py exports the full ARC-TSM-R18 to ONNX.
    model = models[key] if key in models else calibrate_random_weights(build_model("arc_tsm_r18", num_classes=174, num_segments=4,
                                                                    arc_stages=(5,)))
    assert export_and_verify(model, tmp_path, "onnx", key) < TOL
    meta = json.loads(sidecar_path(tmp_path / f"{key}.onnx").read_text())
    assert meta["onnx_opset"] >= 18
    assert meta["onnx_input_names"] == [d["graph_name"] for d in meta["inputs"]]
    assert meta["onnx_output_names"] == [d["graph_name"] for d in meta["outputs"]]


# -- every registered model exports ----------------------------------------------------------------------------------

FAMILIES = {  # one small representative per builder; every registered name must belong to one
    "tsn_": ("tsn_r18", dict(num_classes=5, num_segments=2)),
    "tsm_": ("tsm_r18", dict(num_classes=5, num_segments=2)),
    "arc_tsm_": ("arc_tsm_r18", dict(num_classes=5, num_segments=2, arc_stages=(5,))),
    "slowonly_": ("slowonly_r50", dict(num_classes=5, depth=18, base_channels=8, arc_stages=(5,))),
    "slowfast_r": ("slowfast_r50", dict(num_classes=5, depth=18, base_channels=16, num_frames=16)),
    "hierarchical_": ("hierarchical_multitask", dict(MULTITASK, pathway_depth=50, arc_stages=(5,))),
    "slowfast_multitask": ("slowfast_multitask", dict(depth=18, base_channels=16, num_frames=8)),
}


def test_every_registered_model_has_a_family():
    orphans = [name for name in list_models() if not name.startswith(tuple(FAMILIES))]
    assert not orphans, f"add an export case for {orphans}"


@pytest.mark.parametrize("family", list(FAMILIES))
def test_every_family_exports_to_torchscript(tmp_path, family):
    name, kwargs = FAMILIES[family]
    model = calibrate_random_weights(build_model(name, **kwargs))
    assert export_and_verify(model, tmp_path, "torchscript", name) < TOL


# -- the description next to the file --------------------------------------------------------------------------------

def test_metadata_describes_inputs_outputs_and_normalisation(models, tmp_path):
    model = models["multitask_small"]
    names = {"event": [f"e{i}" for i in range(4)], "set": [f"s{i}" for i in range(14)],
             "element": [f"x{i}" for i in range(99)]}
    path = export_model(model, tmp_path / "mt.pt", "torchscript", size=32, class_names=names)
    meta = json.loads(sidecar_path(path).read_text())
    assert meta["input_order"] == ["event", "set", "element"]
    assert [d["shape"] for d in meta["inputs"]] == [["batch", 3, f, 32, 32] for f in (2, 4, 8)]
    assert [d["frame_interval"] for d in meta["inputs"]] == [16, 8, 2]
    assert [(d["name"], d["num_classes"]) for d in meta["outputs"]] == [("event", 4), ("set", 14), ("element", 99)]
    assert meta["outputs"][1]["class_names"] == names["set"]
    assert meta["normalisation"]["mean"] == [0.485, 0.456, 0.406]
    assert meta["model"]["name"] == "hierarchical_multitask" and meta["dynamic_batch"] is True

    # positional inputs in the documented order give the levels in order
    clips = make_example_inputs(model, size=32, batch=2, seed=5)
    outs = load_exported(path)(*clips)
    with torch.no_grad():
        eager = model(dict(zip(meta["input_order"], clips)))
    for out, level in zip(outs, [d["name"] for d in meta["outputs"]]):
        assert torch.allclose(out, eager[level], atol=TOL)


def test_single_level_metadata_and_frames_override(tmp_path):
    model = calibrate_random_weights(build_model("tsm_r18", num_classes=3, num_segments=2))
    path = export_model(model, tmp_path / "tsm", "torchscript", frames=4, size=32,
                        class_names=["left", "right", "none"], mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    assert path.suffix == ".pt"
    meta = json.loads(sidecar_path(path).read_text())
    assert meta["inputs"][0]["name"] == "clip" and meta["inputs"][0]["shape"] == ["batch", 3, 4, 32, 32]
    assert meta["inputs"][0]["sampling"] == "segments"
    assert meta["outputs"][0]["class_names"] == ["left", "right", "none"]
    assert meta["normalisation"]["std"] == [0.5, 0.5, 0.5]
    assert verify_export(model, path, inputs=torch.randn(1, 3, 4, 32, 32)) < TOL


def test_wrapper_flattens_dicts_in_a_fixed_order(models):
    model = models["multitask_small"]
    clips = make_example_inputs(model, size=32, batch=2)
    wrapper = ExportWrapper(model, list(model.clip_specs), ["element", "event"], dict_input=True)
    with torch.no_grad():
        out, eager = wrapper(*clips), model(dict(zip(model.clip_specs, clips)))
    assert torch.equal(out[0], eager["element"]) and torch.equal(out[1], eager["event"])


def test_export_errors(tmp_path):
    model = build_model("tsm_r18", num_classes=3, num_segments=2)
    with pytest.raises(ModelError, match="export format must be one of"):
        export_model(model, tmp_path / "m.tflite", "tflite")
    with pytest.raises(ModelError, match="class_names"):
        export_model(model, tmp_path / "m.pt", size=32, class_names=["only", "two"])
    with pytest.raises(ModelError, match="batch >= 2"):
        export_model(model, tmp_path / "m.pt", size=32, batch=1)
    with pytest.raises(FineactError, match="not found"):
        verify_export(model, tmp_path / "missing.pt")
    with pytest.raises(ModelError, match="several inputs"):
        export_model(build_model("hierarchical_multitask", **MULTITASK), tmp_path / "mt.pt", frames=4)
