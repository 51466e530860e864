"""Every value fineact hands to Lightning's Trainer, checked first against what this machine has.

Lightning reports a bad `accelerator`, `devices`, `strategy`, `num_nodes` or `precision` from deep inside its
Trainer, after `output_dir` exists, in its own vocabulary (`Trainer(devices=...)`), and some combinations it
changes silently (`16-mixed` on a CPU becomes `bf16-mixed`). `trainer_value_problems(cfg.trainer)` returns one
line per problem in fineact's: the config key, the values allowed, what this machine has. `config.validate`
calls it, so `train`, `test`, `extract-features` and `check-data` all refuse such a config before any work.

The last check hands the five values to Lightning's own parser of them (its accelerator connector, which builds
nothing that runs) and reports what it still refuses, so a combination no rule here foresaw is caught too.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import torch

# Values Lightning accepts without a machine check; a config at these defaults costs no Lightning import.
DEFAULTS = {"accelerator": "auto", "devices": "auto", "strategy": "auto", "num_nodes": 1, "precision": "32-true"}
GPU_NAMES = ("gpu", "cuda")
# Precision values that need a CUDA GPU (on a CPU Lightning would refuse them or silently use another one).
CUDA_PRECISIONS = {"16-mixed": "bf16-mixed", "16": "bf16-mixed", "transformer-engine": None,
                   "transformer-engine-float16": None}


def machine_summary() -> str:
    """What this machine offers Lightning, for messages: torch build, GPUs, CPU cores."""
    import os

    if torch.cuda.is_available():
        names = sorted({torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())})
        gpus = f"{torch.cuda.device_count()} CUDA GPU(s) ({', '.join(names)})"
    elif torch.version.cuda is None:
        gpus = "no GPU: this torch is built for CPU only"
    else:
        gpus = "no usable CUDA GPU"
    return f"this machine has {gpus}, {os.cpu_count()} CPU cores (torch {torch.__version__})"


def trainer_value_problems(trainer: Any) -> list[str]:
    """Problems with trainer.accelerator / devices / strategy / num_nodes / precision on this machine."""
    values = {key: _plain(trainer[key]) for key in DEFAULTS}
    if values == DEFAULTS:
        return []
    from lightning.pytorch.accelerators import AcceleratorRegistry
    from lightning.pytorch.strategies import StrategyRegistry

    problems: list[str] = []
    accelerator = _check_accelerator(values["accelerator"], AcceleratorRegistry, problems)
    _check_num_nodes(values["num_nodes"], problems)
    _check_devices(values["devices"], accelerator, problems)
    _check_strategy(values["strategy"], accelerator, StrategyRegistry, problems)
    _check_precision(values["precision"], accelerator, problems)
    if not problems:
        problems += _lightning_refuses(values)
    return problems


def _plain(value: Any) -> Any:
    from omegaconf import ListConfig

    if isinstance(value, ListConfig):
        return list(value)
    return str(value) if isinstance(value, str) else value  # a precision Choice reads as its string


def _resolved_accelerator(name: str) -> str:
    """What "auto" and "gpu" mean here (as Lightning chooses): "cuda", "mps" or "cpu"."""
    if name not in ("auto", "gpu"):
        return name
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu" if name == "auto" else "gpu"  # "gpu" with no GPU stays unresolved: refused below


def _check_accelerator(name: str, registry, problems: list[str]) -> str:
    allowed = ["auto", "gpu", *registry.available_accelerators()]
    if name not in allowed:
        import difflib

        close = difflib.get_close_matches(name, allowed, n=1)
        problems.append(f"trainer.accelerator: expected one of {', '.join(allowed)}, found {name!r}"
                        + (f"; did you mean {close[0]!r}?" if close else ""))
        return "cpu"
    resolved = _resolved_accelerator(name)
    if resolved == "gpu" or resolved in registry and not registry[resolved]["accelerator"].is_available():
        present = [n for n in registry.available_accelerators() if registry[n]["accelerator"].is_available()]
        problems.append(f"trainer.accelerator: {name!r} is not available; {machine_summary()}. Use one of "
                        f"{', '.join(['auto', *present])}")
        return "cpu"
    return resolved


def _check_num_nodes(num_nodes: Any, problems: list[str]) -> None:
    if not isinstance(num_nodes, int) or isinstance(num_nodes, bool) or num_nodes < 1:
        problems.append(f"trainer.num_nodes: expected a positive number of machines, found {num_nodes!r}")


def _device_list(devices: Any) -> list[int] | None:
    """GPU indices a `devices` value names ([0, 1] or "0,1"), or None when it is a count or "auto"."""
    if isinstance(devices, list):
        return devices
    if isinstance(devices, str) and "," in devices:
        try:
            return [int(x) for x in devices.split(",") if x.strip()]
        except ValueError:
            return None
    return None


def _check_devices(devices: Any, accelerator: str, problems: list[str]) -> None:
    forms = "\"auto\", a positive count (1, 4), -1 (every GPU) or a list of GPU indices ([0, 1])"
    if devices == "auto":
        return
    indices = _device_list(devices)
    count = None
    if indices is None:
        text = str(devices).strip()
        if isinstance(devices, bool) or not (isinstance(devices, int) or text.lstrip("-").isdigit()):
            problems.append(f"trainer.devices: expected {forms}, found {devices!r}")
            return
        count = int(text)
        if count == 0 or count < -1:
            problems.append(f"trainer.devices: expected {forms}, found {devices!r}")
            return
    elif not indices or not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in indices) \
            or len(set(indices)) != len(indices):
        problems.append(f"trainer.devices: expected {forms}; a list holds distinct indices >= 0, found {devices!r}")
        return
    if accelerator == "cpu":
        if indices is not None or count == -1:
            problems.append(f"trainer.devices: {devices!r} names GPUs, but the run is on the CPU ({machine_summary()}"
                            "); on the CPU give a number of processes, e.g. trainer.devices=1")
    elif accelerator == "cuda":
        have = torch.cuda.device_count()
        wanted = max(indices) + 1 if indices is not None else (count if count and count > 0 else 1)
        if wanted > have:
            what = f"GPU index {max(indices)}" if indices is not None else f"{count} GPUs"
            problems.append(f"trainer.devices: {devices!r} asks for {what}; {machine_summary()} "
                            f"(indices 0 to {have - 1})")


def _check_strategy(strategy: str, accelerator: str, registry, problems: list[str]) -> None:
    strategy = strategy.lower()
    allowed = ["auto", *registry.available_strategies()]
    if strategy not in allowed:
        import difflib

        close = difflib.get_close_matches(strategy, allowed, n=1)
        common = ", ".join(s for s in ("auto", "ddp", "ddp_spawn", "ddp_find_unused_parameters_true", "fsdp",
                                       "deepspeed") if s in allowed)
        problems.append(f"trainer.strategy: expected a Lightning strategy ({common}, ...; {len(allowed)} in all), "
                        f"found {strategy!r}" + (f"; did you mean {close[0]!r}?" if close else ""))
        return
    if strategy.startswith("fsdp") and accelerator != "cuda":
        problems.append(f"trainer.strategy: {strategy!r} needs CUDA GPUs; {machine_summary()}. Use ddp "
                        "(or auto) here")
    if strategy.startswith("deepspeed") and importlib.util.find_spec("deepspeed") is None:
        problems.append(f"trainer.strategy: {strategy!r} needs the deepspeed package, which is not installed")
    if strategy.startswith(("xla", "single_xla")) and accelerator != "tpu":
        problems.append(f"trainer.strategy: {strategy!r} needs a TPU (trainer.accelerator=tpu); "
                        f"{machine_summary()}")


def _check_precision(precision: str, accelerator: str, problems: list[str]) -> None:
    if precision in CUDA_PRECISIONS and accelerator != "cuda":
        instead = CUDA_PRECISIONS[precision]
        problems.append(f"trainer.precision: {precision!r} needs a CUDA GPU, but the run is on {accelerator} "
                        f"({machine_summary()})" + (f"; use {instead!r} or '32-true'" if instead else
                                                    "; use '32-true' or 'bf16-mixed'"))
    if precision.startswith("transformer-engine") and importlib.util.find_spec("transformer_engine") is None:
        problems.append(f"trainer.precision: {precision!r} needs NVIDIA's transformer_engine package, which is "
                        "not installed")
    if precision.startswith("bf16") and accelerator == "cuda" and not torch.cuda.is_bf16_supported():
        problems.append(f"trainer.precision: {precision!r}: this GPU has no bfloat16 support ({machine_summary()})"
                        "; use '16-mixed' or '32-true'")


def _lightning_refuses(values: dict) -> list[str]:
    """What Lightning's own parser of these five values refuses (the backstop for combinations not foreseen)."""
    try:
        from lightning.pytorch.trainer.connectors.accelerator_connector import _AcceleratorConnector
    except ImportError:  # a Lightning that moved its parser: the rules above stand alone
        return []
    import logging
    import warnings

    quiet = logging.getLogger("lightning.pytorch")
    level = quiet.level
    quiet.setLevel(logging.WARNING)  # the dry run's "Using ... precision" lines belong to the real Trainer
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _AcceleratorConnector(devices=values["devices"], num_nodes=values["num_nodes"],
                                  accelerator=values["accelerator"], strategy=values["strategy"],
                                  precision=values["precision"], use_distributed_sampler=False)
    except Exception as exc:  # Lightning raises ValueError, TypeError, MisconfigurationException, RuntimeError
        shown = ", ".join(f"trainer.{k}={v!r}" for k, v in values.items())
        return [f"trainer: Lightning refuses {shown}: {str(exc).splitlines()[0]} ({machine_summary()})"]
    finally:
        quiet.setLevel(level)
    return []


def torch_device(text: str, key: str = "--device") -> "torch.device":
    """A device a model can be moved to here ("cpu", "cuda", "cuda:1", "mps"), else a ConfigError naming `key`."""
    from fineact.errors import ConfigError

    try:
        device = torch.device(text)
    except (RuntimeError, TypeError, ValueError):
        raise ConfigError(f"{key}: expected cpu, cuda, cuda:N or mps, found {text!r}") from None
    if device.type == "cpu":
        return device
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"{key}: {text!r} is not available; {machine_summary()}. Use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"{key}: {text!r}: no such GPU; {machine_summary()} (cuda:0 to "
                              f"cuda:{torch.cuda.device_count() - 1})")
        return device
    if device.type == "mps" and getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return device
    raise ConfigError(f"{key}: {text!r} is not available; {machine_summary()}. Use --device cpu")
