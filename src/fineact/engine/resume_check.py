"""What a resume checks: the same config, the same data, a checkpoint layout this fineact reads.

Every training checkpoint carries a fingerprint (`checkpoint["fineact"]`, written by `RunFingerprint`): the
checkpoint layout version, the fineact version, the run's config, the SHA-256 of every annotation and label file,
and the number of processes. `check_resume` compares it with the run about to continue and refuses, naming
every difference, when the continued run could not end with the uninterrupted run's result:

- a changed config key, except the result-neutral ones (RESULT_NEUTRAL: logging, checkpoint cadence, loader
  workers, speed options, where files live) and the process layout (`trainer.devices`, `trainer.num_nodes`,
  `trainer.strategy`, `trainer.accelerator`, `data.batch_size`) as long as the global batch (batch size x
  processes) is unchanged: every optimiser step then sees the same samples with the same per-sample seeds (the
  numbers can still differ at floating-point level, and BatchNorm statistics are per process);
  `trainer.resume_allow_changes` lists keys the user accepts changing anyway (e.g. `trainer.max_epochs`);
- another data split: annotation or label files whose content differs (moving them elsewhere is fine);
- a checkpoint layout other than CHECKPOINT_LAYOUT (a checkpoint of another fineact version whose layout differs).
"""

from __future__ import annotations

from pathlib import Path

import torch
from lightning.pytorch.callbacks import Callback
from omegaconf import DictConfig, OmegaConf

from fineact import __version__
from fineact.data.packs import PACK_INDEX
from fineact.errors import ConfigError
from fineact.files import file_sha256

# 1: fineact before resume fingerprints; 2: + `checkpoint["fineact"]` and the training loader's position.
CHECKPOINT_LAYOUT = 2

RESULT_NEUTRAL = (
    "name", "output_dir",
    "trainer.progress_bar", "trainer.tensorboard", "trainer.log_every_n_steps", "trainer.reuse_host_memory",
    "trainer.checkpoint_every_n_steps", "trainer.checkpoint_every_minutes", "trainer.preemption_signals",
    "trainer.auto_resume", "trainer.resume_allow_changes",
    "trainer.channels_last", "trainer.compile", "trainer.compile_backend", "trainer.compile_mode",
    "data.num_workers", "data.pin_memory", "data.persistent_workers", "data.prefetch_factor",
    # files are compared by content (their hashes), not by where they are
    "data.train.annotations", "data.train.data_root", "data.val.annotations", "data.val.data_root",
    "data.test.annotations", "data.test.data_root", "data.categories", "data.set_categories", "data.vocab",
)
PROCESS_LAYOUT = ("trainer.devices", "trainer.num_nodes", "trainer.strategy", "trainer.accelerator",
                  "data.batch_size")


def data_hashes(cfg: DictConfig) -> dict[str, str]:
    """{config key: SHA-256 of the file's content} of every annotation and label file the config names."""
    data = cfg.data
    files = {f"data.{split}.annotations": data[split].get("annotations") for split in ("train", "val", "test")
             if data[split] is not None and data[split].get("annotations")}
    # a pack (data.<split>.shards, local): its index holds the hashes of the data it was built from
    files.update({f"data.{split}.shards": str(Path(data[split].shards) / PACK_INDEX)
                  for split in ("train", "val", "test") if data[split] is not None and data[split].get("shards")
                  and "://" not in str(data[split].shards)})
    files.update({f"data.{key}": data[key] for key in ("categories", "set_categories", "vocab") if data[key]})
    return {key: file_sha256(path) for key, path in files.items() if Path(path).is_file()}


def fingerprint(cfg: DictConfig, world_size: int, hashes: dict[str, str] | None = None) -> dict:
    return {"layout": CHECKPOINT_LAYOUT, "version": __version__,
            "config": OmegaConf.to_container(cfg, resolve=True, enum_to_str=True),
            "data": hashes if hashes is not None else data_hashes(cfg), "world_size": int(world_size)}


class RunFingerprint(Callback):
    """Writes the run's fingerprint into every checkpoint (hashes computed once, at the start)."""

    def __init__(self, cfg: DictConfig):
        self.cfg = cfg
        self.hashes = data_hashes(cfg)

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        checkpoint["fineact"] = fingerprint(self.cfg, trainer.world_size, self.hashes)


def _flatten(node, prefix: str = "") -> dict:
    if isinstance(node, dict):
        flat = {}
        for key, value in node.items():
            flat.update(_flatten(value, f"{prefix}{key}."))
        return flat if node else {prefix[:-1]: {}}
    return {prefix[:-1]: node}


def changed_keys(before: dict, after: dict) -> dict[str, tuple]:
    """{dotted key: (checkpoint's value, config's value)} of every key whose value differs."""
    a, b = _flatten(before), _flatten(after)
    return {key: (a.get(key, "<absent>"), b.get(key, "<absent>")) for key in sorted(a.keys() | b.keys())
            if a.get(key, "<absent>") != b.get(key, "<absent>")}


def _neutral(key: str) -> bool:
    return any(key == n or key.startswith(f"{n}.") for n in RESULT_NEUTRAL)


def resume_problems(stored: dict | None, cfg: DictConfig, world_size: int) -> list[str]:
    """Why continuing the checkpoint whose fingerprint is `stored` with `cfg` on `world_size` processes would not
    give the uninterrupted run's result (empty: it would)."""
    if stored is None or stored.get("layout") != CHECKPOINT_LAYOUT:
        found = 1 if stored is None else stored.get("layout")
        written = "" if stored is None else f" (written by fineact {stored.get('version')})"
        return [f"checkpoint layout {found}{written}, but this fineact {__version__} resumes layout "
                f"{CHECKPOINT_LAYOUT} only"]
    current = fingerprint(cfg, world_size)
    allowed = set(cfg.trainer.resume_allow_changes)
    problems = []
    changes = {k: v for k, v in changed_keys(stored["config"], current["config"]).items()
               if not _neutral(k) and k not in allowed}
    before_batch = stored["config"]["data"]["batch_size"] * stored["world_size"]
    after_batch = cfg.data.batch_size * world_size
    if before_batch != after_batch:
        problems.append(f"global batch (data.batch_size x processes): checkpoint {before_batch} "
                        f"({stored['config']['data']['batch_size']} x {stored['world_size']}), now {after_batch} "
                        f"({cfg.data.batch_size} x {world_size})")
    for key, (was, now) in changes.items():
        if key not in PROCESS_LAYOUT:
            problems.append(f"{key}: checkpoint {was!r}, config {now!r}")
    for key in sorted(stored["data"].keys() | current["data"].keys()):
        was, now = stored["data"].get(key), current["data"].get(key)
        if was != now:
            problems.append(f"{key} ({OmegaConf.select(cfg, key)}): its content differs from the file the run was trained on "
                            f"(SHA-256 {str(was)[:12]}..., now {str(now)[:12]}...)")
    return problems


def read_fingerprint(path: Path) -> dict | None:
    """The fingerprint of a checkpoint (None: written before layout 2), read without loading its tensors."""
    checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    return checkpoint.get("fineact")


def check_resume(checkpoint_path: Path, stored: dict | None, cfg: DictConfig, world_size: int) -> None:
    problems = resume_problems(stored, cfg, world_size)
    if problems:
        raise ConfigError(f"cannot resume {checkpoint_path}: the run would not continue the run it holds:\n  "
                          + "\n  ".join(problems) + "\nUse the run's own config (output_dir/config.yaml), list "
                          "keys you mean to change in trainer.resume_allow_changes=[KEY,...] (the result is then not "
                          "the uninterrupted run's), or start a new run (--overwrite or another output_dir).")
