"""Per-level evaluation metrics on torchmetrics (synchronised across DDP processes by torchmetrics itself).

Per level: top-k accuracy (share of videos whose label is among the k highest scores), the confusion matrix,
and from it the mean class accuracy (per-class recall averaged over the classes present in the labels, as
REFERENCE.md section 4) and per-class accuracies. For hierarchies: the accuracy of the hierarchy-consistent
prediction per level and the consistency rate of the independent argmaxes.
"""

from __future__ import annotations

import torch
from torch import nn
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix

from fineact.engine.results import EvaluationResults, LevelResult


class LevelMetrics(nn.Module):
    def __init__(self, num_classes: dict[str, int], topk: tuple[int, ...] = (1, 5), consistent: bool = False):
        super().__init__()
        self.levels = list(num_classes)
        self.topk = {level: sorted({min(k, n) for k in topk}) for level, n in num_classes.items()}
        self.accuracy = nn.ModuleDict({
            level: nn.ModuleDict({f"top{k}": MulticlassAccuracy(n, top_k=k, average="micro")
                                  for k in self.topk[level]})
            for level, n in num_classes.items()})
        self.confusion = nn.ModuleDict({level: MulticlassConfusionMatrix(n) for level, n in num_classes.items()})
        self.consistent = consistent
        if consistent:
            self.consistent_accuracy = nn.ModuleDict({level: MeanMetric() for level in num_classes})
            self.consistency_rate = MeanMetric()

    def update(self, scores: dict[str, torch.Tensor], targets: dict[str, torch.Tensor],
               consistent_pred: dict[str, torch.Tensor] | None = None,
               is_consistent: torch.Tensor | None = None) -> None:
        for level in self.levels:
            for metric in self.accuracy[level].values():
                metric.update(scores[level], targets[level])
            self.confusion[level].update(scores[level].argmax(1), targets[level])
            if self.consistent and consistent_pred is not None:
                self.consistent_accuracy[level].update((consistent_pred[level] == targets[level]).float())
        if self.consistent and is_consistent is not None:
            self.consistency_rate.update(is_consistent.float())

    def compute(self) -> EvaluationResults:
        """Per level: top-k, mean class accuracy, per-class accuracy, confusion, support (+ consistency)."""
        levels = {}
        for level in self.levels:
            confusion = self.confusion[level].compute().long()
            support = confusion.sum(1)
            present = support > 0
            per_class = torch.where(present, confusion.diag().float() / support.clamp(min=1), torch.nan)
            levels[level] = LevelResult(
                topk={int(name[3:]): metric.compute().item() for name, metric in self.accuracy[level].items()},
                mean_class_accuracy=per_class[present].mean().item() if present.any() else float("nan"),
                num_videos=int(support.sum()), per_class_accuracy=per_class.tolist(), support=support.tolist(),
                confusion=confusion.tolist(),
                consistent_top1=self.consistent_accuracy[level].compute().item() if self.consistent else None)
        rate = self.consistency_rate.compute().item() if self.consistent else None
        return EvaluationResults(levels, rate)

    def reset(self) -> None:
        for level in self.levels:
            for metric in self.accuracy[level].values():
                metric.reset()
            self.confusion[level].reset()
            if self.consistent:
                self.consistent_accuracy[level].reset()
        if self.consistent:
            self.consistency_rate.reset()
