"""engine/lightning_values.py: every Trainer value is checked against the machine before any work."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf

from conftest import tiny_experiment
from fineact.config import load_config
from fineact.engine import lightning_values
from fineact.engine.lightning_values import torch_device, trainer_value_problems
from fineact.errors import ConfigError

BASE = {"model": {"name": "tsm_r18"}}


def problems(**values) -> list[str]:
    trainer = {**lightning_values.DEFAULTS, **values}
    return trainer_value_problems(OmegaConf.create(trainer))


def test_the_defaults_need_no_check_and_no_lightning_import():
    assert problems() == []


@pytest.mark.parametrize("values", [dict(devices=2, strategy="ddp"), dict(devices="1"), dict(precision="bf16-mixed"),
                                    dict(precision="64-true"), dict(strategy="ddp_spawn", devices=2),
                                    dict(accelerator="cpu", devices=1)])
def test_values_this_cpu_can_run_pass(values):
    if torch.cuda.is_available():
        pytest.skip("these rows describe a CPU machine")
    assert problems(**values) == []


@pytest.mark.parametrize("values, key, fragment", [
    (dict(accelerator="gpu"), "trainer.accelerator", "not available"),
    (dict(accelerator="cuda"), "trainer.accelerator", "not available"),
    (dict(devices=[0, 1]), "trainer.devices", "names GPUs"),
    (dict(devices="0,1"), "trainer.devices", "names GPUs"),
    (dict(devices=-1), "trainer.devices", "names GPUs"),
    (dict(precision="16-mixed"), "trainer.precision", "use 'bf16-mixed'"),
    (dict(strategy="fsdp"), "trainer.strategy", "needs CUDA GPUs"),
])
def test_a_gpu_setting_on_a_cpu_only_machine_names_key_and_machine(values, key, fragment):
    if torch.cuda.is_available():
        pytest.skip("these rows describe a CPU machine")
    [problem] = problems(**values)
    assert problem.startswith(key) and fragment in problem and "this machine has" in problem


@pytest.mark.parametrize("values, fragment", [
    (dict(devices=0), "trainer.devices: expected"), (dict(devices=[1, 1]), "distinct indices"),
    (dict(devices=True), "trainer.devices: expected"), (dict(num_nodes=0), "trainer.num_nodes"),
    (dict(strategy="dp"), "trainer.strategy: expected a Lightning strategy"),
    (dict(accelerator="hpuu"), "trainer.accelerator: expected one of"),
    (dict(strategy="deepspeed"), "deepspeed package"),
])
def test_values_no_machine_can_run(values, fragment):
    if "deepspeed" in str(values) and _installed("deepspeed"):
        pytest.skip("deepspeed is installed here")
    assert any(fragment in p for p in problems(**values)), problems(**values)


def _installed(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def test_gpu_indices_beyond_the_machine_are_named(monkeypatch):
    """The CUDA rules without a GPU: the machine is described as two GPUs."""
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    found: list[str] = []
    lightning_values._check_devices([0, 3], "cuda", found)
    lightning_values._check_devices(4, "cuda", found)
    lightning_values._check_devices([0, 1], "cuda", found)  # fits
    assert len(found) == 2
    assert "GPU index 3" in found[0] and "4 GPUs" in found[1]


def test_config_loading_refuses_them_before_the_output_dir_exists(tiny_gym, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("the row describes a CPU machine")
    from fineact.engine.run import train

    out = tmp_path / "run"
    with pytest.raises(ConfigError, match="trainer.devices"):
        train(load_config(base=tiny_experiment(tiny_gym, out), overrides=["trainer.devices=[0]"]))
    assert not out.exists()


def test_every_problem_is_listed_at_once():
    if torch.cuda.is_available():
        pytest.skip("the row describes a CPU machine")
    with pytest.raises(ConfigError) as info:
        load_config(base=BASE, overrides=["trainer.devices=[0,1]", "trainer.strategy=ddpp", "trainer.num_nodes=0"])
    text = str(info.value)
    assert "trainer.devices" in text and "trainer.strategy" in text and "trainer.num_nodes" in text


def test_lightnings_own_parser_is_the_backstop(monkeypatch):
    """A combination no rule foresaw still fails with the keys named (the rules are switched off here)."""
    for rule in ("_check_devices", "_check_strategy", "_check_precision", "_check_num_nodes"):
        monkeypatch.setattr(lightning_values, rule, lambda *args: None)
    [problem] = problems(devices=0, accelerator="cpu")
    assert problem.startswith("trainer: Lightning refuses") and "trainer.devices=0" in problem


@pytest.mark.parametrize("text, fragment", [("cdua", "expected cpu, cuda"), ("gpu:x", "expected cpu, cuda")])
def test_predict_devices_are_checked(text, fragment):
    with pytest.raises(ConfigError, match=fragment):
        torch_device(text)
    assert torch_device("cpu") == torch.device("cpu")


def test_a_cuda_device_on_a_cpu_machine_is_refused():
    if torch.cuda.is_available():
        pytest.skip("the row describes a CPU machine")
    with pytest.raises(ConfigError, match="not available"):
        torch_device("cuda:0")
