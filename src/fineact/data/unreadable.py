"""An unreadable video met while loading a batch, and how it travels from a DataLoader worker to the trainer.

Datasets never crash on a bad video (datasets.py): they replace it (training) or mark it (evaluation) and put
what happened in the batch's "skipped" field. The DataLoader collates strings and nothing richer, so that field
is text, one "path<TAB>reason" line per video; `encode` writes it and `decode` turns a collated batch field back
into `UnreadableVideo` records. Nothing else reads or writes the text form.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable


@dataclass(frozen=True)
class UnreadableVideo:
    path: str
    reason: str

    def describe(self) -> str:
        """One line for a person; fineact's readers' reasons start with the path already."""
        return self.reason if self.reason.startswith(self.path) else f"{self.path}: {self.reason}"


def encode(videos: Iterable[UnreadableVideo]) -> str:
    """The batch-field text of one sample's unreadable videos ("" when there were none)."""
    return "\n".join(f"{v.path}\t{' '.join(v.reason.splitlines())}" for v in videos)


def decode(field: str | Iterable[str] | None) -> list[UnreadableVideo]:
    """The records in a batch's "skipped" field: one sample's text, or the list the DataLoader collated."""
    if not field:
        return []
    texts = [field] if isinstance(field, str) else list(field)
    videos = []
    for text in texts:
        for line in text.splitlines():
            if line:
                path, _, reason = line.partition("\t")
                videos.append(UnreadableVideo(path, reason))
    return videos
