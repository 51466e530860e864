"""High-level runs behind `fineact train / test`: config -> levels -> module + data -> Trainer -> results.

    summary = train(load_config("configs/ssv1_tsm_r18_8f.yaml"))
    results = test(load_config(...), checkpoint="runs/x/checkpoints/best.ckpt")
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import torch
from omegaconf import DictConfig, OmegaConf

from fineact.engine.checkpoints import export_weights, load_module, load_weights_into
from fineact.engine.console import ensure_handler, lightning_console
from fineact.engine.datamodule import VideoDataModule
from fineact.engine.features import FeatureDataModule, extract_features
from fineact.engine.module import RecognitionModule
from fineact.engine.resume import check_resumable
from fineact.engine.results import EvaluationResults, format_results_table, write_results
from fineact.engine.resume_check import check_resume, read_fingerprint
from fineact.engine.trainer import build_trainer, evaluation_callbacks
from fineact.errors import ConfigError
from fineact.files import check_output_dir
from fineact.labels import LabelLevels, diving48_levels, finegym_levels, flat_levels, read_class_names
from fineact.windows.training_clips import typical_clip_duration

log = logging.getLogger("fineact")


@dataclass
class RunSummary:
    output_dir: Path
    best_checkpoint: Path | None
    last_checkpoint: Path | None
    exported: Path | None = None
    results: EvaluationResults | None = None  # of the evaluation after training, when there was one
    results_path: Path | None = None


def levels_from_config(cfg: DictConfig) -> LabelLevels:
    data = cfg.data
    if data.labels == "finegym":
        if not data.categories or not data.set_categories:
            raise ConfigError("data.labels=finegym needs data.categories (gym99/gym288_categories.txt) and "
                              "data.set_categories (set_categories.txt)")
        return finegym_levels(data.categories, data.set_categories)
    if data.labels == "diving48":
        if not data.vocab:
            raise ConfigError("data.labels=diving48 needs data.vocab (Diving48_vocab.json)")
        return diving48_levels(data.vocab)
    if data.categories:
        return flat_levels(read_class_names(data.categories))
    if data.num_classes:
        return flat_levels([f"class {i}" for i in range(data.num_classes)])
    raise ConfigError("data.labels=flat needs data.categories (a class-name file) or data.num_classes")


def _container(cfg: DictConfig) -> dict:
    return OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)  # checkpoints hold plain strings


def build_module(cfg: DictConfig, levels: LabelLevels | None = None) -> RecognitionModule:
    levels = levels or levels_from_config(cfg)
    module = RecognitionModule(_container(cfg), levels.to_dict())
    if cfg.pretrained:
        load_weights_into(module.model, cfg.pretrained)
    return module


def train(cfg: DictConfig, resume: bool = False, callbacks: list | None = None,
          overwrite: bool = False) -> RunSummary:
    """Fit, evaluate the best checkpoint on the val (or test) split, export safetensors weights.

    `callbacks` are extra Lightning callbacks (e.g. early stopping) added to the Trainer's own. An output_dir
    that holds a previous run is continued with `resume`, replaced with `overwrite`, and otherwise refused,
    except an unfinished run (a last.ckpt, no export yet) with `trainer.auto_resume`: it is continued when its
    checkpoint's config and data match (resume_check.py), as after a preemption.
    """
    check_output_dir(cfg.output_dir, "output_dir")  # a file in the way fails now, not after the first epoch
    ensure_handler()
    with lightning_console():
        return _train(cfg, resume, callbacks, overwrite)


def _train(cfg: DictConfig, resume: bool, callbacks: list | None, overwrite: bool) -> RunSummary:
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    levels = levels_from_config(cfg)
    module = build_module(cfg, levels)
    datamodule = VideoDataModule(cfg, levels, module.model)
    has_val = cfg.data.val is not None
    for split in ("train", "val") if has_val else ("train",):
        datamodule.dataset(split)  # reads the annotations: a bad file or format fails before anything is written
    output_dir = Path(cfg.output_dir)
    last = output_dir / "checkpoints" / "last.ckpt"
    if overwrite and not resume:
        _remove_previous_run(output_dir)
    elif not resume and _unfinished(cfg, output_dir):
        resume = True
        log.info("%s holds an unfinished run: resuming it if its config and data match (start afresh "
                 "with --overwrite)", output_dir)
    elif not resume:
        _refuse_to_replace(output_dir)
    if resume and last.is_file():  # a truncated last.ckpt, or one of another model: named before config.yaml changes
        check_resumable(last, module, cfg)
    output_dir.mkdir(parents=True, exist_ok=True)
    # for sliding windows of segment models later (fineact.windows.training_clips), read before any caching
    training_clips = typical_clip_duration(datamodule.dataset("train").samples)
    (output_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    datamodule.write_missing_videos(output_dir)  # untrimmed FineGym: what the run could not read, up front
    if cfg.multitask.cache_features:
        datamodule = cached_feature_datamodule(cfg, levels, module, datamodule, output_dir / "features")
    trainer = build_trainer(cfg, output_dir, validate=has_val, extra_callbacks=callbacks or [])
    ckpt_path = str(last) if resume and last.is_file() else None
    if resume and ckpt_path is None:
        log.info("no %s to resume from; starting from scratch", last)
    if ckpt_path is not None:
        check_resume(last, read_fingerprint(last), cfg, trainer.world_size)
        log.info("resuming from %s (config and data match the run's)", last)
    trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
    callback = trainer.checkpoint_callback
    best = Path(callback.best_model_path) if callback and callback.best_model_path else None
    summary = RunSummary(output_dir, best, last if last.is_file() else None)
    eval_split = "test" if cfg.data.test is not None else ("val" if has_val else None)
    chosen = best or summary.last_checkpoint
    if chosen is None:
        return summary
    best_module = load_module(chosen, config_overrides=cfg)  # loaded once: exported and evaluated
    if trainer.is_global_zero:
        summary.exported = export_weights(best_module, output_dir / "model",
                                          extra={"training_clips": training_clips})
    if eval_split:
        summary.results, summary.results_path = evaluate(cfg, chosen, eval_split, module=best_module,
                                                         datamodule=datamodule)
    return summary


def cached_feature_datamodule(cfg: DictConfig, levels: LabelLevels, module: RecognitionModule,
                              videos: VideoDataModule, cache_dir: Path) -> FeatureDataModule:
    """Extract the frozen pathways' features of every split once; the fusion then trains on the cache."""
    model = module.model
    if not hasattr(model, "forward_from_features") or not cfg.multitask.freeze_pathways:
        raise ConfigError("multitask.cache_features needs a multi-pathway model with frozen pathways "
                          "(multitask.freeze_pathways=true)")
    device = "cuda" if torch.cuda.is_available() and cfg.trainer.accelerator in ("auto", "gpu", "cuda") else "cpu"
    module.to(device)
    cache = {}
    for split in ("train", "val", "test"):
        if cfg.data[split] is not None:
            cache[split] = extract_features(module, videos, split, cache_dir / f"{split}.safetensors",
                                            progress=cfg.trainer.progress_bar)
    module.cpu()
    return FeatureDataModule(cfg, levels, model, cache)


def evaluate(cfg: DictConfig, checkpoint: str | Path, split: str = "val", module: RecognitionModule | None = None,
             datamodule: VideoDataModule | None = None, quiet: bool = False, overwrite: bool = False
             ) -> tuple[EvaluationResults | None, Path | None]:
    """Test `checkpoint` on a split; results JSON/CSVs are written next to the checkpoint.

    `module`: that checkpoint already loaded (with `config_overrides=cfg`) by the run that owns it, to avoid
    reading it again. Otherwise the config must name the checkpoint's model and labels, and results already
    next to the checkpoint are replaced only with `overwrite`.
    """
    checkpoint = Path(checkpoint)
    if module is None and not overwrite:
        existing = checkpoint.parent / f"results_{split}.json"
        if existing.is_file():
            raise ConfigError(f"{existing} already holds results of this checkpoint on data.{split}; pass "
                              "--overwrite (overwrite=True) to replace them")
    loaded = module if module is not None else load_module(checkpoint, config_overrides=cfg)
    levels = loaded.levels
    if module is None:
        _check_labels_match(checkpoint, levels, levels_from_config(cfg))
        _check_model_matches(checkpoint, loaded.hparams["config"]["model"], cfg)
    datamodule = datamodule or VideoDataModule(cfg, levels, loaded.model)
    datamodule.eval_split = split
    unreadable, callbacks = evaluation_callbacks(cfg)
    trainer = build_trainer(cfg, Path(cfg.output_dir), validate=False, logger=False,
                            enable_checkpointing=False, callbacks=callbacks)
    trainer.test(loaded, datamodule=datamodule, verbose=False)
    results = loaded.test_results
    path = None
    if trainer.is_global_zero and results is not None:
        stem = f"results_{split}"
        path = write_results(results, levels, checkpoint.parent, stem=stem,
                             extra={"checkpoint": str(checkpoint), "split": split,
                                    "views": {"clips": cfg.data.test_clips, "crops": cfg.data.test_crops},
                                    "aggregate": cfg.eval.aggregate,
                                    "skipped_videos": sorted({v.describe() for v in unreadable.evaluated}),
                                    **datamodule.coverage(split)})
        if not quiet and log.isEnabledFor(logging.INFO):  # --quiet: the results files only
            print(format_results_table(results))
            print(f"results written to {path}")
    return results, path


def _refuse_to_replace(output_dir: Path) -> None:
    """A finished or interrupted run in `output_dir` is never replaced without being asked to."""
    products = [output_dir / "checkpoints" / "last.ckpt", output_dir / "checkpoints" / "best.ckpt",
                output_dir / "model.safetensors"]
    found = [str(path) for path in products if path.exists()]
    if found:
        raise ConfigError(f"output_dir {output_dir} holds a previous run ({', '.join(found)}); pass --resume to "
                          "continue it, --overwrite to replace it, or choose another folder with "
                          "output_dir=PATH")


def _unfinished(cfg: DictConfig, output_dir: Path) -> bool:
    """An interrupted run to continue automatically: a last.ckpt and no exported weights yet."""
    return bool(cfg.trainer.auto_resume) and (output_dir / "checkpoints" / "last.ckpt").is_file() \
        and not (output_dir / "model.safetensors").exists()


def _remove_previous_run(output_dir: Path) -> None:
    """--overwrite: the previous run's checkpoints, results and export go, so none is taken for the new run's."""
    folder = output_dir / "checkpoints"
    stale = [*folder.glob("*.ckpt"), *folder.glob("results_*"), output_dir / "model.safetensors",
             output_dir / "model.json", *output_dir.glob("hpc_ckpt_*.ckpt")]  # Lightning's SLURM requeue saves
    for path in stale:
        if path.is_file():
            path.unlink()


# Model arguments that name files rather than the architecture: they may differ between the two configs.
_FILE_ARGUMENTS = ("pretrained", "pathway_checkpoints", "pretrained_backbone")


def _check_model_matches(checkpoint: Path, trained: dict, cfg: DictConfig) -> None:
    """Evaluating a checkpoint with a config that names another model would report numbers of the wrong model."""
    def described(model: dict) -> tuple[str, dict]:
        args = {k: v for k, v in (model.get("args") or {}).items() if k not in _FILE_ARGUMENTS}
        return model.get("name"), args

    wanted = OmegaConf.to_container(cfg.model, resolve=True, enum_to_str=True)
    if described(trained) != described(wanted):
        (name, args), (want_name, want_args) = described(trained), described(wanted)
        raise ConfigError(f"checkpoint {checkpoint}: it holds model {name!r} with args {args}, but the config "
                          f"names model {want_name!r} with args {want_args}. Evaluate it with the config it was "
                          "trained with (or set model.name / model.args to match).")


def _check_labels_match(checkpoint: Path, trained: LabelLevels, data: LabelLevels) -> None:
    """A checkpoint evaluated with another config's data must have been trained on the same label levels."""
    if trained.class_names != data.class_names:
        sizes = lambda levels: ", ".join(f"{n} {levels.num_classes[n]}" for n in levels.level_names)  # noqa: E731
        raise ConfigError(f"checkpoint {checkpoint}: it was trained on other labels than the config's data "
                          f"(classes per level: checkpoint {sizes(trained)}; data {sizes(data)}, or the same "
                          "counts with other names). Evaluate it with the config it was trained with.")


def test(cfg: DictConfig, checkpoint: str | Path, split: str | None = None, overwrite: bool = False
         ) -> tuple[EvaluationResults | None, Path | None]:
    split = split or ("test" if cfg.data.test is not None else "val")
    if cfg.data[split] is None:
        raise ConfigError(f"data.{split}: no such split in the config to test on")
    ensure_handler()
    with lightning_console():
        return evaluate(cfg, checkpoint, split, overwrite=overwrite)


def read_results(path: str | Path) -> dict:
    return json.loads(Path(path).read_text())
