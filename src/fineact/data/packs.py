"""A pack: one split of a dataset written as LitData chunks (`fineact pack`), and what it must match.

A pack folder holds LitData's `index.json` and `chunk-*.bin` files, whose records are

    {"video": encoded clip bytes, "position": the sample's place in the annotation file's sample list,
     "meta": JSON text: sample id, finest label, all labels, frame count, fps, source file, annotation file
             and line, the window of the source it holds, how it was encoded}

and fineact's own `fineact_pack.json` (`PackIndex`): which split, how many records, the data settings of the
config that wrote it and the SHA-256 of every file those settings read (annotation and label files). Training
reads a pack only when the config it runs with has the same settings and label files (and the same annotation
file, when the config names one): a pack built from other data is refused, naming what differs.

Records hold encoded video, never decoded frames (10-50x larger): a sample that is a whole video file keeps
the file's bytes unchanged, so decoding it from the pack gives exactly the frames the file gives; a sample that
is a window of a longer video (or a frame folder) is re-encoded to H.264 holding just that window
(data/pack_writer.py), and the record's frame 0 is the window's first frame.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from fineact.data.annotations import Sample
from fineact.data.video import EncodedVideo
from fineact.errors import ConfigError
from fineact.files import file_sha256

PACK_INDEX = "fineact_pack.json"
PACK_FORMAT = 1
# The data settings a record's content depends on (how annotation lines become samples and labels). Sampler,
# transforms and loader settings are applied when the pack is read, so they may differ freely.
DATA_SETTINGS = ("format", "labels", "num_classes", "frame_folders", "filename_template", "start_index")
LABEL_FILES = ("categories", "set_categories", "vocab")


def is_remote(location: str) -> bool:
    """An object-store URL (s3://, gs://, az://, ...) rather than a local folder."""
    return "://" in location


def data_fingerprint(cfg: DictConfig, split: str, with_annotations: bool = True) -> dict:
    """{"settings": {...}, "files": {key: sha256}} of the config's data settings for `split`."""
    data = cfg.data
    settings = {key: OmegaConf.to_container(data, enum_to_str=True)[key] for key in DATA_SETTINGS}
    files = {key: file_sha256(data[key]) for key in LABEL_FILES if data[key]}
    node = data[split]
    if with_annotations and node is not None and not OmegaConf.is_missing(node, "annotations"):
        files[f"{split}.annotations"] = file_sha256(node.annotations)
    return {"settings": settings, "files": files}


@dataclass
class PackIndex:
    """fineact_pack.json: what a pack holds and which data it was made from."""

    split: str
    num_samples: int
    fingerprint: dict
    source_bytes: int = 0          # the source files' size (whole files, for the windows they gave)
    pack_bytes: int = 0
    format: int = PACK_FORMAT
    annotation_file: str = ""
    notes: dict = field(default_factory=dict)

    def write(self, folder: Path) -> None:
        (folder / PACK_INDEX).write_text(json.dumps(asdict(self), indent=1, sort_keys=True))

    @classmethod
    def read(cls, location: str) -> "PackIndex":
        text = _read_text(location, PACK_INDEX)
        try:
            return cls(**json.loads(text))
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{location}/{PACK_INDEX}: not a fineact pack index ({exc})") from None

    def check_matches(self, cfg: DictConfig, split: str, location: str) -> None:
        """Refuse a pack whose data settings or files differ from `cfg`'s (each difference named)."""
        if self.format != PACK_FORMAT:
            raise ConfigError(f"{location}: pack format {self.format}, this fineact reads format {PACK_FORMAT}; "
                              f"pack the split again with `fineact pack`")
        found = data_fingerprint(cfg, split)
        differences = [f"data.{key}: pack made with {value!r}, this config has {found['settings'].get(key)!r}"
                       for key, value in self.fingerprint["settings"].items() if found["settings"].get(key) != value]
        for key, digest in self.fingerprint["files"].items():
            config_key = key.replace(f"{self.split}.", f"{split}.")
            if config_key.endswith(".annotations") and config_key not in found["files"]:
                continue  # a config reading only the pack names no annotation file to compare
            if found["files"].get(config_key) != digest:
                differences.append(f"data.{config_key}: the pack was made from another file (sha256 {digest[:12]}..., "
                                   f"this config's: {str(found['files'].get(config_key, 'none'))[:12]}...)")
        differences += [f"data.{key}: the pack was made without it, this config sets one"
                        for key in found["files"] if key in LABEL_FILES and key not in self.fingerprint["files"]]
        if differences:
            raise ConfigError(f"data.{split}.shards={location}: the pack was built from other data than this "
                              f"config's:\n  " + "\n  ".join(differences) +
                              "\nPack the split again with this config (`fineact pack CONFIG --split "
                              f"{self.split} --out DIR`).")


def _read_text(location: str, name: str) -> str:
    if not is_remote(location):
        path = Path(location) / name
        if not path.is_file():
            raise ConfigError(f"{location}: not a fineact pack (no {name}); write one with `fineact pack`")
        return path.read_text()
    from litdata.streaming.downloader import get_downloader  # the library's own object-store clients

    with tempfile.TemporaryDirectory() as folder:
        local = str(Path(folder) / name)
        get_downloader(location, folder, []).download_file(f"{location.rstrip('/')}/{name}", local)
        return Path(local).read_text()


# ------------------------------------------------------------------------------------------------ records


def record_of(position: int, sample: Sample, video: bytes, num_frames: int, fps: float | None,
              encoding: str) -> dict:
    """The pack record of `sample` (the `position`-th of its split) holding `video`, its window encoded."""
    meta = {"sample_id": sample.sample_id, "label": sample.label, "labels": list(sample.labels),
            "num_frames": num_frames, "fps": fps, "source": sample.source,
            "annotation_file": sample.annotation_file, "line": sample.line,
            "window": [sample.start_frame, sample.start_frame + num_frames], "encoding": encoding}
    return {"video": video, "position": position, "meta": json.dumps(meta)}


def sample_of(record: dict, pack: str) -> Sample:
    """The Sample a record stands for, its source the record's bytes (frame 0 = the window's first frame)."""
    meta = json.loads(record["meta"])
    name = (f"{meta['source']} (record {int(record['position'])} of pack {pack}, from "
            f"{meta['annotation_file']}:{meta['line']})")
    return Sample(source=EncodedVideo(bytes(record["video"]), name), label=meta["label"],
                  labels=tuple(meta["labels"]), num_frames=meta["num_frames"], sample_id=meta["sample_id"],
                  line=meta["line"], annotation_file=meta["annotation_file"])
