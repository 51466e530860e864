"""Checkpoints and exported weights.

- Training checkpoints are Lightning's (`last.ckpt`, `best.ckpt`): weights, optimizer, scheduler, loop state,
  RNG states, and the config + label levels as hyperparameters. They load with torch.load(weights_only=True).
- Exported inference weights are `<stem>.safetensors` (the model's tensors only) + `<stem>.json` (the config
  and label levels needed to rebuild the model; schema in `fineact.interop.sidecar`). No pickle anywhere.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from fineact.errors import WeightsError
from fineact.files import atomic_write
from fineact.interop.sidecar import WEIGHTS_FORMAT, read_sidecar, sidecar_path, write_sidecar
from fineact.interop.trained_for import SIDECAR_KEY, trained_for
from fineact.interop.weights import load_strict, read_weights_file, torch_load_weights_only

# Sections of a config that describe the run, not the model: `fineact test` takes them from its own config.
RUN_SECTIONS = ("data", "eval", "trainer", "output_dir", "name", "seed")


def read_checkpoint(path: str | Path) -> dict:
    checkpoint = torch_load_weights_only(path, "checkpoint")
    if not isinstance(checkpoint, dict):
        raise WeightsError(f"checkpoint {path}: expected a dict, found {type(checkpoint).__name__}")
    return checkpoint


def _model_state(state_dict: dict) -> dict:
    return {k[len("model."):]: v for k, v in state_dict.items() if k.startswith("model.")}


def load_module(path: str | Path, config_overrides: DictConfig | None = None):
    """Rebuild the RecognitionModule a checkpoint or export describes, with its weights (strict)."""
    from fineact.engine.module import RecognitionModule

    path = Path(path)
    weights = path.with_suffix(".safetensors")  # `model`, `model.json` and `model.safetensors` all name the export
    if path.suffix == ".safetensors" or sidecar_path(weights).is_file() and path.suffix != ".ckpt":
        meta_path = sidecar_path(weights)
        if not meta_path.is_file():
            raise WeightsError(f"exported weights {path}: the description {meta_path} is missing")
        meta = read_sidecar(meta_path, {WEIGHTS_FORMAT})
        config, levels = meta["config"], meta["levels"]
        state = read_weights_file(weights)
    else:
        ckpt = read_checkpoint(path)
        hp = ckpt.get("hyper_parameters") or {}
        if "config" not in hp or "levels" not in hp:
            raise WeightsError(f"checkpoint {path}: not a fineact training checkpoint (no config/levels inside); "
                               "use load_weights / pretrained= for plain weight files")
        config, levels = hp["config"], hp["levels"]
        state = _model_state(ckpt["state_dict"])
    config = weights_free_config(config)
    if config_overrides is not None:
        override = OmegaConf.to_container(config_overrides, resolve=True, enum_to_str=True)
        for key in RUN_SECTIONS:
            config[key] = override[key]
    module = RecognitionModule(config, levels)
    load_strict(module.model, state, str(path))
    module.eval()
    return module


def weights_free_config(config: dict) -> dict:
    """The config without its weight sources: rebuilding from a checkpoint must not read other files."""
    config = json.loads(json.dumps(config))
    config["pretrained"] = None
    config.get("model", {}).get("args", {}).pop("pretrained", None)
    config.get("model", {}).get("args", {}).pop("pathway_checkpoints", None)
    if "multitask" in config:
        config["multitask"]["pathway_checkpoints"] = {}
    return config


def export_weights(module, stem: str | Path, extra: dict | None = None) -> Path:
    """Write `<stem>.safetensors` + `<stem>.json`; returns the safetensors path.

    `extra`: more fields for the JSON (e.g. `training_clips`, see fineact.windows.training_clips)."""
    from safetensors.torch import save

    weights = Path(stem).with_suffix(".safetensors")
    tensors = {k: v.detach().contiguous().cpu() for k, v in module.model.state_dict().items()}
    # Atomic: a full disk leaves the previous export intact (and says so) instead of half a file.
    atomic_write(weights, lambda handle: handle.write(save(tensors)), "exported weights")
    write_sidecar(weights, WEIGHTS_FORMAT, {"config": weights_free_config(module.hparams["config"]),
                                            "levels": module.hparams["levels"],
                                            "trained_levels": module.trained_levels,
                                            SIDECAR_KEY: trained_for(module.trained_levels, module.model.clip_specs),
                                            **(extra or {})})
    return weights


def load_weights_into(model: nn.Module, path: str | Path):
    """`pretrained=PATH` of a config: any layout fineact.interop reads (detected from the keys), strictly."""
    from fineact.interop import load_weights

    report = load_weights(model, path, source="auto")
    print(f"fineact: {report.summary()}")
    return report
