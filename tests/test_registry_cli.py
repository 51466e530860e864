"""The model registry and the `fineact` command."""

import json

import pytest
import torch

from fineact.cli import main
from fineact.errors import ModelError
from fineact.models import build_model, list_models


def test_registry_has_the_paper_models_and_every_model_maps_clips_to_logits():
    names = list_models()
    for required in ("tsn_r50", "tsm_r18", "tsm_r50", "arc_tsm_r18", "arc_tsm_r50"):
        assert required in names
    for name in ("tsn_r50", "tsm_r18", "arc_tsm_r18"):
        model = build_model(name, num_classes=6, num_segments=2, dropout=0.3).eval()
        assert model(torch.randn(1, 3, 2, 32, 32)).shape == (1, 6)


def test_unknown_model_lists_the_available_names():
    with pytest.raises(ModelError) as info:
        build_model("tsm_r19")
    assert "tsm_r18" in str(info.value) and "arc_tsm_r50" in str(info.value)


def test_unknown_argument_suggests_the_right_one():
    with pytest.raises(ModelError, match="num_segments"):
        build_model("tsm_r18", num_segment=8)


def test_profile_command_prints_json(capsys):
    assert main(["profile", "tsm_r18", "--frames", "2", "--size", "64", "--num-classes", "10", "--json"]) == 0
    [result] = json.loads(capsys.readouterr().out)
    assert result["model"] == "tsm_r18" and result["inputs"]["clip"] == [1, 3, 2, 64, 64]
    assert result["params"] == sum(p.numel() for p in build_model("tsm_r18", num_classes=10).parameters())
    assert result["paper"] == {}  # non-default arguments: the paper's figures do not apply


def test_profile_table_and_errors(capsys):
    assert main(["profile", "arc_tsm_r18", "--frames", "2", "--size", "64"]) == 0
    assert "arc_tsm_r18" in capsys.readouterr().out
    assert main(["profile", "no_such_model"]) == 2
    assert "unknown model" in capsys.readouterr().err


def test_help_works_for_every_command(capsys):
    for command in (["--help"], ["profile", "--help"], ["models", "--help"]):
        with pytest.raises(SystemExit) as info:
            main(command)
        assert info.value.code == 0
    assert "GMACs" in capsys.readouterr().out
