"""`fineact train --resume`: the run's last.ckpt is checked against the config before Lightning loads it.

Lightning would fail deep inside `load_state_dict` (or torch.load) with a traceback. Here a truncated or empty
last.ckpt, one that is not a fineact training checkpoint, or one whose model does not fit the config's is a
WeightsError that names the file, the config values that differ and the weight keys that do not fit.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from fineact.errors import WeightsError
from fineact.interop.weights import check_fit

# Config values that shape the model being trained; a resumed run must keep them. Files the weights came from
# may move between the start and the resume: they are not compared (the weights themselves are).
MODEL_SECTIONS = ("model", "level", "multitask.freeze_pathways", "data.labels", "data.num_classes")
FILE_KEYS = ("model.args.pretrained", "model.args.pathway_checkpoints", "model.args.pretrained_backbone")


def _flatten(node, prefix: str = "") -> dict:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: node}


def _under(key: str, sections) -> bool:
    return any(key == s or key.startswith(f"{s}.") for s in sections)


def config_differences(saved: dict, cfg: DictConfig, sections=MODEL_SECTIONS) -> list[str]:
    """'key: checkpoint X, config Y' for each value of `sections` that differs."""
    current = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    old, new = _flatten(saved), _flatten(current)
    keys = sorted(k for k in set(old) | set(new)
                  if _under(k, sections) and not _under(k, FILE_KEYS) and old.get(k) != new.get(k))
    return [f"{k}: checkpoint {old.get(k)!r}, config {new.get(k)!r}" for k in keys]


def check_resumable(last: Path, module, cfg: DictConfig) -> None:
    """Raise a WeightsError when `last` cannot continue the run `cfg` / `module` describe."""
    from fineact.engine.checkpoints import read_checkpoint

    try:
        checkpoint = read_checkpoint(last)
    except WeightsError as exc:
        raise WeightsError(f"--resume: {exc}. It cannot be resumed from; start again with --overwrite, or "
                           f"restore a good copy of {last.name}") from None
    hp = checkpoint.get("hyper_parameters") or {}
    if "state_dict" not in checkpoint or "config" not in hp:
        raise WeightsError(f"--resume: {last} is not a fineact training checkpoint (no state_dict / config "
                           "inside); start again with --overwrite")
    differences = config_differences(hp["config"], cfg)
    if hp.get("levels") != module.hparams["levels"]:
        differences.append("the label levels (class names per level) differ from the config's data")
    try:
        check_fit(module.state_dict(), checkpoint["state_dict"],
                  f"--resume: the weights in {last} do not fit the model the config builds:")
    except WeightsError as exc:
        named = "".join(f"\n  config value {d}" for d in differences)
        raise WeightsError(f"{exc}{named}\nResume with the config the run was started with, or start a new run "
                           "(--overwrite or another output_dir)") from None
    if differences:
        raise WeightsError(f"--resume: {last} was trained with other model settings than the config's:\n  "
                           + "\n  ".join(differences) + "\nResume with the config the run was started with, or "
                           "start a new run (--overwrite or another output_dir)")
