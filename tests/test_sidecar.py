"""The JSON description beside every export (fineact.interop.sidecar): one header for weights and graphs, the
previous version's files (both of its forms) still read, and a malformed file is refused naming file and key."""

from __future__ import annotations

import json
import re
import shutil

import pytest
import torch

from conftest import tiny_experiment
from fineact.config import load_config
from fineact.engine.checkpoints import export_weights, load_module
from fineact.engine.run import build_module
from fineact.errors import WeightsError
from fineact.interop import export_model, load_exported, verify_export
from fineact.interop.random_weights import calibrate_random_weights
from fineact.interop.sidecar import VERSION, read_sidecar, sidecar_path, write_sidecar
from fineact.models import build_model

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def weights_export(tiny_gym, tmp_path_factory):
    """A tiny module and its model.safetensors + model.json, as `fineact train` exports them."""
    module = build_module(load_config(base=tiny_experiment(tiny_gym, tmp_path_factory.mktemp("run"))))
    return module, export_weights(module, tmp_path_factory.mktemp("export") / "model")


@pytest.fixture(scope="module")
def graph_export(tmp_path_factory):
    """A tiny TorchScript export named m.bin: only its description can tell the format."""
    model = calibrate_random_weights(build_model("tsm_r18", num_classes=3, num_segments=2))
    return model, export_model(model, tmp_path_factory.mktemp("graph") / "m.bin", "torchscript", size=32)


def _copy(path, tmp_path):
    """The export and its description copied into tmp_path (tests edit the copy, the fixture stays intact)."""
    for file in (path, sidecar_path(path)):
        shutil.copy(file, tmp_path / file.name)
    return tmp_path / path.name


def _edit(path, change) -> None:
    meta = sidecar_path(path)
    meta.write_text(json.dumps(change(json.loads(meta.read_text()))))


def test_weights_and_graphs_share_one_header(weights_export, graph_export):
    weights = read_sidecar(sidecar_path(weights_export[1]))
    graph = read_sidecar(sidecar_path(graph_export[1]))
    header = {"fineact_export", "format", "file", "fineact_version", "torch_version"}
    assert header <= set(weights) and header <= set(graph)
    assert (weights["fineact_export"], weights["format"], weights["file"]) == (VERSION, "safetensors",
                                                                               "model.safetensors")
    assert (graph["fineact_export"], graph["format"], graph["file"]) == (VERSION, "torchscript", "m.bin")
    assert sidecar_path(weights_export[1]).name == "model.json" and sidecar_path(graph_export[1]).name == "m.bin.json"


def test_a_version_1_weights_description_still_loads(weights_export, tmp_path):
    module, exported = weights_export
    path = _copy(exported, tmp_path)
    # What fineact wrote before the schema was shared: no header, "format" named the schema.
    _edit(path, lambda m: {"format": "fineact-export-1", "config": m["config"], "levels": m["levels"],
                           "trained_levels": m["trained_levels"]})
    assert read_sidecar(sidecar_path(path))["format"] == "safetensors"
    loaded = load_module(path)
    expected = module.model.state_dict()
    assert all(torch.equal(v, expected[k]) for k, v in loaded.model.state_dict().items())
    assert loaded.levels == module.levels


def test_a_version_1_graph_description_still_reads(graph_export, tmp_path):
    model, exported = graph_export
    path = _copy(exported, tmp_path)
    _edit(path, lambda m: {**m, "fineact_export": 1})
    assert read_sidecar(sidecar_path(path))["fineact_export"] == 1
    outputs = load_exported(path)(torch.randn(2, 3, 2, 32, 32))  # the format comes from the description
    assert outputs[0].shape == (2, 3)
    assert verify_export(model, path) < 1e-4  # input shapes come from the description too


@pytest.mark.parametrize("change, message", [
    (lambda m: {k: v for k, v in m.items() if k != "levels"}, r"missing key 'levels' \(an object\)"),
    (lambda m: {**m, "config": "tiny"}, r"'config' should be an object, found str"),
    (lambda m: {**m, "fineact_export": 7}, r"fineact_export is 7; this fineact reads versions 1 and 2"),
    (lambda m: {k: v for k, v in m.items() if k != "fineact_export"}, r"missing key 'fineact_export'"),
    (lambda m: {**m, "format": "pickle"}, r"'format' is 'pickle', expected 'safetensors' or one of"),
    (lambda m: {**m, "format": "onnx"}, r"missing key 'inputs'"),
])
def test_a_malformed_weights_description_names_file_and_key(weights_export, tmp_path, change, message):
    path = _copy(weights_export[1], tmp_path)
    _edit(path, change)
    with pytest.raises(WeightsError, match=re.escape(f"{tmp_path / 'model.json'}: ") + message):
        load_module(path)


def test_unreadable_or_mismatched_descriptions_are_refused(weights_export, graph_export, tmp_path):
    path = _copy(weights_export[1], tmp_path)
    sidecar_path(path).write_text('{"format": "fineact-export-1", "config": ')
    with pytest.raises(WeightsError, match=r"model\.json: cannot be read as JSON"):
        load_module(path)
    with pytest.raises(WeightsError, match=r"m\.bin\.json: describes a 'torchscript' file, expected one of "
                                           r"\['safetensors'\]"):
        read_sidecar(sidecar_path(graph_export[1]), {"safetensors"})
    graph = _copy(graph_export[1], tmp_path)
    _edit(graph, lambda m: {**m, "inputs": [{"name": "clip"}]})
    with pytest.raises(WeightsError, match=r"m\.bin\.json: inputs\[0\] needs a 'shape' list"):
        verify_export(graph_export[0], graph)


def test_the_writer_refuses_what_the_reader_would(tmp_path):
    with pytest.raises(WeightsError, match="missing key 'levels'"):
        write_sidecar(tmp_path / "model.safetensors", "safetensors", {"config": {}})
    assert not (tmp_path / "model.json").exists()
