"""What a fineact model was trained for (its levels and clips), recorded with its weights and checked on use.

The two-stage multi-task recipe (seed 000) puts one base model per level into the pathway of that level. A set
model in the event pathway loads without complaint (the shapes fit) and silently trains a wrong network, so:

- every training checkpoint stores `fineact_trained_for` = {"levels": [...], "clips": {input: [frames, interval]}}
  (RecognitionModule.on_save_checkpoint), and every safetensors export the same under "trained_for" in its JSON;
- `check_pathway_source` refuses a file trained for another level than the pathway's, or on other clips than
  the pathway takes, naming both. Files without the record (other frameworks, older fineact) are not checked,
  except that older fineact checkpoints still tell their level through their config.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from fineact.errors import WeightsError

CHECKPOINT_KEY = "fineact_trained_for"
SIDECAR_KEY = "trained_for"


def trained_for(levels: list[str], clip_specs: Mapping) -> dict:
    """The record: the levels a model predicts and the clip (frames, interval) of each of its inputs."""
    return {"levels": list(levels),
            "clips": {name: [spec.num_frames, spec.frame_interval] for name, spec in clip_specs.items()}}


def _from_config(config: dict, levels: dict) -> dict | None:
    """The level of an older single-level fineact checkpoint, from its config (clips unknown)."""
    from fineact.labels import LabelLevels
    from fineact.models import get_entry

    try:
        names = LabelLevels.from_dict(levels).level_names
        multi_level = "levels" in get_entry((config.get("model") or {}).get("name")).accepted_arguments()
    except Exception:  # not label levels or a model fineact knows: nothing to check against
        return None
    if multi_level or not names:
        return None
    level = config.get("level") or names[-1]
    return {"levels": [level], "clips": {}}


def read_trained_for(path: str | Path) -> dict | None:
    """The record of a fineact checkpoint or export, or None for a file that has none."""
    from fineact.interop.sidecar import is_sidecar, read_sidecar, sidecar_path

    path = Path(path)
    if path.suffix == ".safetensors":
        meta = sidecar_path(path)
        if not is_sidecar(meta):
            return None
        data = read_sidecar(meta)
        return data.get(SIDECAR_KEY) or _from_config(data.get("config") or {}, data.get("levels") or {})
    from fineact.interop.weights import torch_load_weights_only

    try:
        checkpoint = torch_load_weights_only(path)
    except WeightsError:  # e.g. a framework's checkpoint with metadata classes: its reader handles it
        return None
    if not isinstance(checkpoint, dict):
        return None
    if isinstance(checkpoint.get(CHECKPOINT_KEY), dict):
        return checkpoint[CHECKPOINT_KEY]
    hp = checkpoint.get("hyper_parameters") or {}
    if isinstance(hp.get("config"), dict) and isinstance(hp.get("levels"), dict):
        return _from_config(hp["config"], hp["levels"])
    return None


def check_pathway_source(model, pathway: str, path: str | Path, record: dict | None = None) -> None:
    """Refuse `path` for `pathway` of a HierarchicalMultiTask when it was trained for another level or clip."""
    record = read_trained_for(path) if record is None else record
    if not record or len(record.get("levels") or []) != 1:
        return  # no record, or a multi-level file (its pathway of the same name is taken)
    level = record["levels"][0]
    where = f"multitask.pathway_checkpoints.{pathway}"
    if pathway in model.levels and level in model.levels and level != pathway:
        raise WeightsError(f"{where}: {path} is a base model trained for level {level!r}, but it is given as the "
                           f"{pathway!r} pathway; give the {pathway} base model's checkpoint there (and this one "
                           f"as multitask.pathway_checkpoints.{level})")
    clips = list((record.get("clips") or {}).values())
    spec = model.clip_specs.get(pathway)
    if len(clips) == 1 and spec is not None and list(clips[0]) != [spec.num_frames, spec.frame_interval]:
        frames, interval = clips[0]
        raise WeightsError(f"{where}: {path} was trained on {frames} x {interval} clips (frames x interval), but "
                           f"the {pathway!r} pathway takes {spec.num_frames} x {spec.frame_interval} "
                           f"(model.args.pathway_clips.{pathway}); give the base model trained for this pathway, "
                           "or set pathway_clips to the clip it was trained on")
