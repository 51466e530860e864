"""Pooled features per pathway: `fineact extract-features`, and the feature cache of the two-stage recipe.

For a multi-pathway model the features are each pathway's pooled vector (e.g. 2048-D per SlowOnly-R50
pathway); for a single-pathway model, its pooled feature. They are computed on the un-augmented test view
(centre crop), stored as safetensors: `<pathway>` (N, V, D) float32 per pathway, plus `label` and `index`.
Training the fusion layers on cached features gives the same result as running the frozen pathways on the
same un-augmented views every epoch, in a fraction of the time.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch.utils.data import DataLoader, Dataset

from fineact.engine.datamodule import VideoDataModule


def pathway_features(model, clips) -> dict[str, torch.Tensor]:
    if hasattr(model, "forward_pathway_features"):
        return model.forward_pathway_features(clips)
    return {"clip": model.forward_features(clips)}


@torch.no_grad()
def extract_features(module, datamodule: VideoDataModule, split: str, out_path: str | Path,
                     progress: bool = True) -> Path:
    """Features of every video of `split` (all test views) into a safetensors file; returns its path."""
    module.eval()
    loader = datamodule.eval_dataloader(split)  # un-augmented test views
    collected: dict[str, list[torch.Tensor]] = {}
    labels, indices = [], []
    total = len(loader)
    for step, batch in enumerate(loader, 1):
        clips = module.normalization.clips(_to_device(batch["clips"], module.device))  # on the device, as in training
        first = next(iter(clips.values())) if isinstance(clips, dict) else clips
        b, v = first.shape[:2]
        flat = {k: t.flatten(0, 1) for k, t in clips.items()} if isinstance(clips, dict) else clips.flatten(0, 1)
        for name, feats in pathway_features(module.model, flat).items():
            collected.setdefault(name, []).append(feats.view(b, v, -1).float().cpu())
        labels.append(batch["label"])
        indices.append(batch["index"])
        if progress:
            print(f"\rextracting {split} features: {step}/{total} batches", end="", flush=True)
    if progress:
        print()
    tensors = {name: torch.cat(parts) for name, parts in collected.items()}
    tensors["label"] = torch.cat(labels)
    tensors["index"] = torch.cat(indices)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(out_path))
    return out_path


def _to_device(clips, device):
    return {k: t.to(device) for k, t in clips.items()} if isinstance(clips, dict) else clips.to(device)


class FeatureDataset(Dataset):
    """Cached pathway features as training/evaluation samples for the fusion layers."""

    def __init__(self, path: str | Path):
        tensors = load_file(str(path))
        self.labels = tensors.pop("label")
        self.indices = tensors.pop("index")
        self.features = tensors
        keep = self.labels >= 0  # unreadable videos were stored as placeholders
        self.rows = torch.nonzero(keep).flatten().tolist()

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, key) -> dict:
        row = self.rows[key[0] if isinstance(key, tuple) else key]
        return {"features": {name: f[row] for name, f in self.features.items()}, "label": self.labels[row],
                "index": self.indices[row], "skipped": ""}


class FeatureDataModule(VideoDataModule):
    """Serves cached features instead of clips; evaluation falls back to nothing else (features only)."""

    def __init__(self, cfg, levels, model, cache: dict[str, Path]):
        super().__init__(cfg, levels, model)
        self.cache = cache

    def dataset(self, split: str, mode: str | None = None):
        key = f"{split}/features"
        if key not in self._datasets:
            self._datasets[key] = FeatureDataset(self.cache[split])
        return self._datasets[key]

    def train_dataloader(self) -> DataLoader:
        return self._feature_loader("train", shuffle=True)

    def eval_dataloader(self, split: str) -> DataLoader:
        return self._feature_loader(split, shuffle=False)

    def _feature_loader(self, split: str, shuffle: bool) -> DataLoader:
        dataset = self.dataset(split)
        return DataLoader(dataset, batch_size=self.cfg.data.batch_size,
                          sampler=self.keyed_sampler(len(dataset), shuffle), num_workers=0)
