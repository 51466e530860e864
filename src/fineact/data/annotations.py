"""Readers for the annotation formats users already have -> a list of `Sample`s.

Formats (one reader each, plus `read_annotations(fmt, ...)` to pick one by name):
- "video_list" (MMAction2): `<relative/path.mp4> <label> [<label> ...]`.
- "frame_list" (MMAction2 / TSM rawframes): `<dir> <num_frames> <label>` or `<dir> <offset> <num_frames> <label>`.
- "finegym": official split files, `<clip_id> <Clabel>`, clip_id = `{youtube_id}_E_{6d}_{6d}_A_{4d}_{4d}`:
  trimmed clips `<clip_id>.mp4`, or (`read_finegym_untrimmed_split`, with the official annotation JSON) element
  spans of the untrimmed videos `<youtube_id>.mp4|mkv|webm`.
- "sthv1_list": TSM-style Something-Something V1 frame lists (`<dir> <num_frames> <label>`, frames `{:05d}.jpg`).
- "sthv1_csv": official Something-Something V1 CSVs, `<id>;<label name>` (test split: `<id>` only).
- "diving48": Diving48 JSON, a list of {vid_name, label, start_frame, end_frame}.
- "kinetics_csv": Kinetics CSV with header `label,youtube_id,time_start,time_end,split[,is_cc]`.

Choices, and why:
- Every mistake is an `AnnotationError` naming `file:line`, what was expected and what was found, because
  annotation files are edited by hand and a traceback from a later stage would not say which line is wrong.
- Sources are resolved under `data_root` and may not leave it (no absolute paths, no `..`): annotation files
  come from the internet and must not point anywhere on disk. The check is lexical; symlinks the user placed
  inside data_root are followed later, as the user intended.
- Files are not opened here; a separate check-data pass does that, so reading a 100k-line list stays instant.
- Blank lines and `#` comments are skipped in the line-based formats. An empty file is an error ("no samples"):
  it is almost always a wrong path or a failed download, never an intended empty split.
- A sample id seen twice in one file is an error: it would silently weigh that clip twice.
- Unlabeled samples (SSv1 test CSV, Kinetics test CSV) get label -1 and labels ().
"""

from __future__ import annotations

import csv
import inspect
import os
import posixpath
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Mapping, Sequence

from fineact.data.textfiles import closest_hint, read_json_list, read_numbered_lines
from fineact.errors import AnnotationError, ConfigError
from fineact.labels import read_class_names

if TYPE_CHECKING:
    from fineact.labels import LabelLevels

PathLike = str | os.PathLike

__all__ = [
    "Sample",
    "FORMATS",
    "read_annotations",
    "read_video_list",
    "read_frame_list",
    "read_finegym_split",
    "read_finegym_untrimmed_split",
    "read_sthv1_frame_list",
    "read_sthv1_csv",
    "read_diving48_json",
    "read_kinetics_csv",
    "write_video_list",
    "write_frame_list",
    "write_finegym_split",
    "parse_finegym_clip_id",
]

UNLABELED = -1
KINETICS_FILENAME = "{youtube_id}_{time_start:06d}_{time_end:06d}.mp4"


@dataclass(frozen=True)
class Sample:
    """One video (or frame folder) and its finest label."""

    source: str                     # absolute path of a video file or a frame folder
    label: int                      # finest label; the first one for multi-label lines; -1 when unlabeled
    labels: tuple[int, ...] = ()    # all labels of the line (readers fill it; () when unlabeled)
    num_frames: int | None = None   # frames in the window when known (frame lists, Diving48 end - start)
    start_frame: int = 0            # first frame of the window (frame-list offset, Diving48 start_frame)
    end_frame: int | None = None    # exclusive end of the window when known
    is_frame_folder: bool = False
    filename_template: str = "img_{:05d}.jpg"  # frame folders only
    start_index: int = 1            # index of the first frame file in a folder (1-based in MMAction2/TSM lists)
    sample_id: str = ""             # clip id / video name, for reports
    line: int = 0                   # 1-based line in the annotation file, for later error messages
    annotation_file: str = ""
    # Untrimmed FineGym: the element span in seconds of the untrimmed video (official JSON); start_frame and
    # end_frame are filled from it once the video's frame rate is known (data/untrimmed.py).
    start_seconds: float | None = None
    end_seconds: float | None = None

    @property
    def all_labels(self) -> tuple[int, ...]:
        """Every label of the sample, also for samples built by hand with only `label` set."""
        if self.labels:
            return self.labels
        return (self.label,) if self.label >= 0 else ()

    @property
    def where(self) -> str:
        """'file:line' of the annotation this sample came from."""
        return f"{self.annotation_file}:{self.line}"


# ----------------------------------------------------------------------------------------------------------
# Shared checks
# ----------------------------------------------------------------------------------------------------------

_INTEGER = re.compile(r"[+-]?[0-9]{1,18}")  # ASCII digits only: int() would also take '١٢' or '1_000'


def _found(text: str) -> str:
    return repr(text if len(text) <= 60 else text[:57] + "...")


def _parse_int(text: str, what: str, where: str, minimum: int = 0) -> int:
    if not _INTEGER.fullmatch(text):
        raise AnnotationError(f"{where}: expected {what} as an integer, found {_found(text)}")
    value = int(text)
    if value < minimum:
        raise AnnotationError(f"{where}: expected {what} >= {minimum}, found {value}")
    return value


def _check_label(label: int, num_classes: int | None, where: str) -> int:
    if num_classes is not None and label >= num_classes:
        raise AnnotationError(f"{where}: expected a label in 0..{num_classes - 1}, found {label}")
    return label


def _parse_label(text: str, num_classes: int | None, where: str) -> int:
    return _check_label(_parse_int(text, "a label", where), num_classes, where)


def _resolve(data_root: str, relative: str, where: str) -> str:
    """Absolute path of `relative` under data_root; anything that could leave data_root is an error."""
    parts = relative.replace("\\", "/").split("/")
    if "\x00" in relative:
        raise AnnotationError(f"{where}: expected a path, found one containing a NUL character")
    if relative.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", relative) or ".." in parts:
        raise AnnotationError(f"{where}: expected a path relative to the data root without '..', found "
                              f"{_found(relative)}; annotation files may not point outside the data root")
    normalized = posixpath.normpath(relative)
    if normalized in (".", ""):
        raise AnnotationError(f"{where}: expected a file or folder under the data root, found {_found(relative)}")
    return os.path.join(data_root, normalized)


def _root(data_root: PathLike) -> str:
    return os.path.abspath(os.fspath(data_root))


def _check_template(filename_template: str, start_index: int) -> None:
    try:
        distinct = filename_template.format(0) != filename_template.format(1)
    except (AttributeError, IndexError, KeyError, TypeError, ValueError) as err:
        distinct, reason = False, f" ({type(err).__name__}: {err})"
    else:
        reason = " (every frame would get the same name)"
    if not distinct:
        raise ConfigError(f"filename_template must format one frame index, like 'img_{{:05d}}.jpg'; "
                          f"found {filename_template!r}{reason}")
    if start_index < 0:
        raise ConfigError(f"start_index must be >= 0, found {start_index}")


class _Collector:
    """Gathers the samples of one file; rejects repeated sample ids and an empty result."""

    def __init__(self, path: PathLike):
        self.path = os.fspath(path)
        self.samples: list[Sample] = []
        self._first_line: dict[object, int] = {}

    def add(self, sample: Sample, key: object = None) -> None:
        """key: what must be unique (default the sample id)."""
        key = sample.sample_id if key is None else key
        if key in self._first_line:
            raise AnnotationError(f"{self.path}:{sample.line}: expected each sample once, found "
                                  f"{_found(sample.sample_id)} again (first at line {self._first_line[key]})")
        self._first_line[key] = sample.line
        self.samples.append(sample)

    def result(self, expected: str) -> list[Sample]:
        if not self.samples:
            raise AnnotationError(f"{self.path}: no samples: expected lines {expected}, found none")
        return self.samples


# ----------------------------------------------------------------------------------------------------------
# MMAction2 / TSM lists
# ----------------------------------------------------------------------------------------------------------

def read_video_list(path: PathLike, data_root: PathLike, num_classes: int | None = None) -> list[Sample]:
    """MMAction2 video list: `<relative/path.mp4> <label> [<label> ...]` (several labels = multi-label)."""
    root, samples = _root(data_root), _Collector(path)
    for number, text in read_numbered_lines(path):
        where = f"{path}:{number}"
        fields = text.split()
        if len(fields) < 2:
            raise AnnotationError(f"{where}: expected '<relative/path> <label> [<label> ...]', "
                                  f"found {len(fields)} field(s): {_found(text.strip())}")
        labels = tuple(_parse_label(f, num_classes, where) for f in fields[1:])
        samples.add(Sample(_resolve(root, fields[0], where), labels[0], labels, sample_id=fields[0],
                           line=number, annotation_file=os.fspath(path)))
    return samples.result("'<relative/path> <label> [<label> ...]'")


def read_frame_list(path: PathLike, data_root: PathLike, filename_template: str = "img_{:05d}.jpg",
                    start_index: int = 1, num_classes: int | None = None) -> list[Sample]:
    """Frame-folder list: `<dir> <num_frames> <label>` or `<dir> <offset> <num_frames> <label>`.

    The window holds frames offset .. offset + num_frames - 1 (counted from the folder's first frame, whose file
    index is start_index).
    """
    _check_template(filename_template, start_index)
    root, samples = _root(data_root), _Collector(path)
    for number, text in read_numbered_lines(path):
        where = f"{path}:{number}"
        fields = text.split()
        if len(fields) not in (3, 4):
            raise AnnotationError(f"{where}: expected '<dir> <num_frames> <label>' or '<dir> <offset> "
                                  f"<num_frames> <label>', found {len(fields)} field(s): {_found(text.strip())}")
        offset = _parse_int(fields[1], "the frame offset", where) if len(fields) == 4 else 0
        num_frames = _parse_int(fields[-2], "the number of frames", where, minimum=1)
        label = _parse_label(fields[-1], num_classes, where)
        samples.add(Sample(_resolve(root, fields[0], where), label, (label,), num_frames=num_frames,
                           start_frame=offset, end_frame=offset + num_frames, is_frame_folder=True,
                           filename_template=filename_template, start_index=start_index, sample_id=fields[0],
                           line=number, annotation_file=os.fspath(path)),
                    key=(fields[0], offset, num_frames))  # the offset form may list several windows of one folder
    return samples.result("'<dir> [<offset>] <num_frames> <label>'")


def read_sthv1_frame_list(path: PathLike, data_root: PathLike, num_classes: int | None = 174,
                          filename_template: str = "{:05d}.jpg", start_index: int = 1) -> list[Sample]:
    """TSM-style Something-Something V1 list: `<dir> <num_frames> <label>`, frames 00001.jpg, 00002.jpg, ...

    Label ids in TSM's lists follow TSM's category.txt, which sorts the names alphabetically (the order of
    shared/data/something_something/sthv2_label_map_mmaction2.txt), not the order of the official CSV.
    """
    return read_frame_list(path, data_root, filename_template, start_index, num_classes)


# ----------------------------------------------------------------------------------------------------------
# FineGym
# ----------------------------------------------------------------------------------------------------------

# The YouTube id may itself contain '_' or '-'; its length is not enforced (re-uploads and synthetic data use
# other ids), the event/sub-action part after it is what identifies the clip.
_FINEGYM_CLIP = re.compile(r"(?P<video>[A-Za-z0-9_-]+?)_E_(?P<es>[0-9]{6})_(?P<ee>[0-9]{6})"
                           r"_A_(?P<as>[0-9]{4})_(?P<ae>[0-9]{4})")


def parse_finegym_clip_id(clip_id: str) -> dict[str, str | int] | None:
    """{video, event_start, event_end, action_start, action_end} (seconds) or None if clip_id is malformed."""
    match = _FINEGYM_CLIP.fullmatch(clip_id)
    if match is None:
        return None
    return {"video": match["video"], "event_start": int(match["es"]), "event_end": int(match["ee"]),
            "action_start": int(match["as"]), "action_end": int(match["ae"])}


def _check_finegym_clip_id(clip_id: str, where: str) -> None:
    parts = parse_finegym_clip_id(clip_id)
    if parts is None:
        raise AnnotationError(f"{where}: expected a clip id '<youtube_id>_E_<6 digits>_<6 digits>_A_<4 digits>_"
                              f"<4 digits>', found {_found(clip_id)}")
    for kind in ("event", "action"):
        if parts[f"{kind}_end"] < parts[f"{kind}_start"]:
            raise AnnotationError(f"{where}: expected the {kind} end >= its start in {clip_id!r}, found "
                                  f"{parts[f'{kind}_start']} > {parts[f'{kind}_end']}")


def _finegym_lines(path: PathLike, num_classes: int | None):
    """(line number, 'file:line', clip id, label) of each line `<clip_id> <Clabel>` of a split file, checked."""
    for number, text in read_numbered_lines(path):
        where = f"{path}:{number}"
        fields = text.split()
        if len(fields) != 2:
            raise AnnotationError(f"{where}: expected '<clip_id> <label>', found {len(fields)} field(s): "
                                  f"{_found(text.strip())}")
        _check_finegym_clip_id(fields[0], where)
        yield number, where, fields[0], _parse_label(fields[1], num_classes, where)


def read_finegym_split(path: PathLike, data_root: PathLike, levels: LabelLevels | None = None,
                       clip_ext: str = ".mp4", frame_folders: bool = False,
                       filename_template: str = "img_{:05d}.jpg", start_index: int = 1,
                       num_classes: int | None = None) -> list[Sample]:
    """FineGym split file: `<clip_id> <Clabel>`; clips at `<data_root>/<clip_id><clip_ext>` or frame folders
    `<data_root>/<clip_id>/`. Labels are checked against `levels` (its finest level) or `num_classes`."""
    if levels is not None:
        num_classes = levels.num_classes[levels.finest]
    if frame_folders:
        _check_template(filename_template, start_index)
    root, samples = _root(data_root), _Collector(path)
    for number, where, clip_id, label in _finegym_lines(path, num_classes):
        source = _resolve(root, clip_id if frame_folders else clip_id + clip_ext, where)
        samples.add(Sample(source, label, (label,), is_frame_folder=frame_folders,
                           filename_template=filename_template, start_index=start_index, sample_id=clip_id,
                           line=number, annotation_file=os.fspath(path)))
    return samples.result("'<clip_id> <label>'")


UNTRIMMED_EXTENSIONS = (".mp4", ".mkv", ".webm")  # what YouTube downloaders write, in order of preference


def untrimmed_video_path(data_root: PathLike, youtube_id: str, where: str = "") -> str:
    """`<data_root>/<youtube_id>.<ext>` for the first extension that exists; the .mp4 path when none does."""
    candidates = [_resolve(_root(data_root), youtube_id + ext, where) for ext in UNTRIMMED_EXTENSIONS]
    return next((c for c in candidates if os.path.isfile(c)), candidates[0])


def read_finegym_untrimmed_split(path: PathLike, data_root: PathLike, annotations: PathLike,
                                 levels: LabelLevels | None = None, num_classes: int | None = None
                                 ) -> list[Sample]:
    """FineGym split file read against the official annotation JSON: each `<clip_id> <Clabel>` line becomes the
    element's span (seconds, `start_seconds`/`end_seconds`) in the untrimmed video `<data_root>/<youtube_id>.<ext>`.

    An id the JSON does not hold (unknown video, event or segment, or an event with `segments: null`) is an
    AnnotationError naming this file's line. Videos are not opened here (data/untrimmed.py does, once each).
    """
    from fineact.data.finegym_json import load_finegym_annotations

    if levels is not None:
        num_classes = levels.num_classes[levels.finest]
    document = load_finegym_annotations(annotations)
    root, samples, sources = _root(data_root), _Collector(path), {}
    for number, where, clip_id, label in _finegym_lines(path, num_classes):
        parts = _FINEGYM_CLIP.fullmatch(clip_id)
        span = document.element(parts["video"], f"E_{parts['es']}_{parts['ee']}", f"A_{parts['as']}_{parts['ae']}",
                                where)
        if span.youtube_id not in sources:
            sources[span.youtube_id] = untrimmed_video_path(root, span.youtube_id, where)
        samples.add(Sample(sources[span.youtube_id], label, (label,), sample_id=clip_id, line=number,
                           annotation_file=os.fspath(path), start_seconds=span.start, end_seconds=span.end))
    return samples.result("'<clip_id> <label>'")


# ----------------------------------------------------------------------------------------------------------
# Something-Something V1 official CSV
# ----------------------------------------------------------------------------------------------------------

def _label_index(label_names: Sequence[str] | PathLike) -> tuple[dict[str, int], list[str]]:
    names = read_class_names(label_names) if isinstance(label_names, (str, os.PathLike)) else list(label_names)
    return {name: i for i, name in enumerate(names)}, names


def _lookup_label(name: str, index: Mapping[str, int], where: str) -> int:
    if name not in index:
        raise AnnotationError(f"{where}: expected a known label name, found unknown label {_found(name)}"
                              f"{closest_hint(name, index)}")
    return index[name]


def read_sthv1_csv(path: PathLike, data_root: PathLike, label_names: Sequence[str] | PathLike,
                   filename_template: str = "{:05d}.jpg", start_index: int = 1) -> list[Sample]:
    """Official SSv1 CSV: `<id>;<label name>` (train/validation) or `<id>` (test, unlabeled -> label -1).

    label_names: class names in id order, or the path of a one-name-per-line file (e.g. the official order in
    sthv1_label_map_mmaction2.txt). Frames live in `<data_root>/<id>/00001.jpg ...`. A file must be all
    labeled or all unlabeled: a mix means a damaged file.
    """
    _check_template(filename_template, start_index)
    index, _ = _label_index(label_names)
    root, samples = _root(data_root), _Collector(path)
    labeled: bool | None = None
    for number, text in read_numbered_lines(path):
        where = f"{path}:{number}"
        video_id, sep, name = (part.strip() for part in text.partition(";"))
        if not video_id or any(c.isspace() for c in video_id) or (sep and not name):
            raise AnnotationError(f"{where}: expected '<id>;<label name>' or '<id>', found {_found(text.strip())}")
        if labeled is None:
            labeled = bool(sep)
        elif labeled != bool(sep):
            raise AnnotationError(f"{where}: expected {'<id>;<label name>' if labeled else '<id> alone'} like the "
                                  f"lines before, found {_found(text.strip())}")
        label = _lookup_label(name, index, where) if sep else UNLABELED
        samples.add(Sample(_resolve(root, video_id, where), label, (label,) if sep else (), is_frame_folder=True,
                           filename_template=filename_template, start_index=start_index, sample_id=video_id,
                           line=number, annotation_file=os.fspath(path)))
    return samples.result("'<id>;<label name>'")


# ----------------------------------------------------------------------------------------------------------
# Diving48 JSON
# ----------------------------------------------------------------------------------------------------------

def _json_int(record: dict, key: str, where: str, minimum: int = 0) -> int:
    value = record[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise AnnotationError(f"{where}: expected {key!r} to be an integer, found {_found(repr(value))}")
    if value < minimum:
        raise AnnotationError(f"{where}: expected {key!r} >= {minimum}, found {value}")
    return value


def read_diving48_json(path: PathLike, data_root: PathLike, num_classes: int | None = 48,
                       clip_ext: str = ".mp4", frame_folders: bool = False,
                       filename_template: str = "img_{:05d}.jpg", start_index: int = 1) -> list[Sample]:
    """Diving48 JSON: a list of {"vid_name", "label", "start_frame", "end_frame"} (end exclusive).

    Videos are `<data_root>/<vid_name><clip_ext>` (or frame folders `<data_root>/<vid_name>/`). start_frame and
    end_frame may be absent (the window is then the whole video). Use the V2 files: V1 had label noise.
    """
    if frame_folders:
        _check_template(filename_template, start_index)
    root, samples = _root(data_root), _Collector(path)
    for position, (number, record) in enumerate(read_json_list(path, "Diving48 annotation file")):
        where = f"{path}:{number} (record {position})"  # minified JSON puts every record on line 1
        if not isinstance(record, dict) or not {"vid_name", "label"} <= record.keys():
            raise AnnotationError(f"{where}: expected record {position} as an object with 'vid_name' and 'label' "
                                  f"(and 'start_frame', 'end_frame'), found {_found(repr(record))}")
        name = record["vid_name"]
        if not isinstance(name, str) or not name.strip():
            raise AnnotationError(f"{where}: expected 'vid_name' to be a non-empty string, found {_found(repr(name))}")
        label = _check_label(_json_int(record, "label", where), num_classes, where)
        start = _json_int(record, "start_frame", where) if "start_frame" in record else 0
        end = _json_int(record, "end_frame", where, minimum=start + 1) if "end_frame" in record else None
        source = _resolve(root, name if frame_folders else name + clip_ext, where)
        samples.add(Sample(source, label, (label,), num_frames=None if end is None else end - start,
                           start_frame=start, end_frame=end, is_frame_folder=frame_folders,
                           filename_template=filename_template, start_index=start_index, sample_id=name,
                           line=number, annotation_file=os.fspath(path)))
    return samples.result("'{\"vid_name\": ..., \"label\": ...}' records")


# ----------------------------------------------------------------------------------------------------------
# Kinetics CSV
# ----------------------------------------------------------------------------------------------------------

_KINETICS_REQUIRED = ("youtube_id", "time_start", "time_end")
_YOUTUBE_ID = re.compile(r"[A-Za-z0-9_-]+")


def _check_filename_pattern(pattern: str) -> None:
    try:
        pattern.format(youtube_id="abc", time_start=0, time_end=10, label="x", split="train")
    except (AttributeError, IndexError, KeyError, TypeError, ValueError) as err:
        raise ConfigError(f"filename_pattern may use {{youtube_id}}, {{time_start}}, {{time_end}}, {{label}} and "
                          f"{{split}}; found {pattern!r} ({type(err).__name__}: {err})") from None


def _csv_fields(path: PathLike, number: int, text: str) -> list[str]:
    try:
        return next(csv.reader([text]))
    except csv.Error as err:
        raise AnnotationError(f"{path}:{number}: expected a CSV row, found {_found(text)} ({err})") from None


def _kinetics_header(path: PathLike, number: int, text: str) -> list[str]:
    columns = [c.strip().lower() for c in _csv_fields(path, number, text)]
    missing = [c for c in _KINETICS_REQUIRED if c not in columns]
    if missing or len(set(columns)) != len(columns):
        raise AnnotationError(f"{path}:{number}: expected a header like 'label,youtube_id,time_start,time_end,split' "
                              f"(is_cc optional), found {_found(text.strip())}")
    return columns


def read_kinetics_csv(path: PathLike, data_root: PathLike, label_names: Sequence[str] | PathLike,
                      split: str | None = None, filename_pattern: str = KINETICS_FILENAME) -> list[Sample]:
    """Kinetics CSV (`label,youtube_id,time_start,time_end,split`, optionally `,is_cc`; test files lack `label`).

    Videos are `<data_root>/<filename_pattern>`, by default `<youtube_id>_<time_start:06d>_<time_end:06d>.mp4` as
    the common download scripts name them; the pattern may also use {label} and {split} for per-class folders.
    split: keep only rows of that split (e.g. "train"). Without a label column samples are unlabeled (-1).
    """
    _check_filename_pattern(filename_pattern)
    index, _ = _label_index(label_names)
    root, samples = _root(data_root), _Collector(path)
    lines = read_numbered_lines(path)
    if not lines:
        raise AnnotationError(f"{path}: no samples: expected a header 'label,youtube_id,time_start,time_end,split' "
                              f"and rows, found an empty file")
    columns = _kinetics_header(path, *lines[0])
    if split is not None and "split" not in columns:
        raise AnnotationError(f"{path}:{lines[0][0]}: split={split!r} was asked for, but the header has no "
                              f"'split' column (found {columns})")
    splits_seen: set[str] = set()
    for number, text in lines[1:]:
        row = _kinetics_row(path, number, text, columns)
        splits_seen.add(row.get("split", ""))
        if split is not None and row["split"] != split:
            continue
        samples.add(_kinetics_sample(row, index, root, filename_pattern, f"{path}:{number}", number, path))
    if split is not None and not samples.samples:
        raise AnnotationError(f"{path}: no samples with split {split!r}; found splits {sorted(splits_seen)}")
    return samples.result("'label,youtube_id,time_start,time_end,split'")


def _kinetics_row(path: PathLike, number: int, text: str, columns: list[str]) -> dict[str, str]:
    values = _csv_fields(path, number, text)
    if len(values) != len(columns):
        raise AnnotationError(f"{path}:{number}: expected {len(columns)} comma-separated fields ({','.join(columns)}), "
                              f"found {len(values)}: {_found(text.strip())}")
    return {c: v.strip() for c, v in zip(columns, values)}


def _kinetics_sample(row: dict[str, str], index: Mapping[str, int], root: str, pattern: str, where: str,
                     number: int, path: PathLike) -> Sample:
    youtube_id = row["youtube_id"]
    if not _YOUTUBE_ID.fullmatch(youtube_id):
        raise AnnotationError(f"{where}: expected a YouTube id (letters, digits, '_', '-'), found {_found(youtube_id)}")
    start = _parse_int(row["time_start"], "time_start", where)
    end = _parse_int(row["time_end"], "time_end", where, minimum=start + 1)
    label = _lookup_label(row["label"], index, where) if "label" in row else UNLABELED
    name = pattern.format(youtube_id=youtube_id, time_start=start, time_end=end, label=row.get("label", ""),
                          split=row.get("split", ""))
    return Sample(_resolve(root, name, where), label, (label,) if label >= 0 else (),
                  sample_id=f"{youtube_id}_{start:06d}_{end:06d}", line=number, annotation_file=os.fspath(path))


# ----------------------------------------------------------------------------------------------------------
# Dispatch by format name
# ----------------------------------------------------------------------------------------------------------

FORMATS: dict[str, Callable[..., list[Sample]]] = {
    "video_list": read_video_list,
    "frame_list": read_frame_list,
    "finegym": read_finegym_split,
    "sthv1_list": read_sthv1_frame_list,
    "sthv1_csv": read_sthv1_csv,
    "diving48": read_diving48_json,
    "kinetics_csv": read_kinetics_csv,
}


def read_annotations(fmt: str, path: PathLike, data_root: PathLike, **options) -> list[Sample]:
    """Read an annotation file of format `fmt` (a key of FORMATS); options go to that format's reader."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown annotation format {fmt!r}: expected one of {', '.join(FORMATS)}"
                          f"{closest_hint(fmt, FORMATS)}")
    reader = FORMATS[fmt]
    try:
        inspect.signature(reader).bind(path, data_root, **options)
    except TypeError:
        accepted = list(inspect.signature(reader).parameters)[2:]
        raise ConfigError(f"annotation format {fmt!r} accepts the options {accepted}, found "
                          f"{sorted(options)}") from None
    return reader(path, data_root, **options)


# ----------------------------------------------------------------------------------------------------------
# Writers (line-based formats; used by the synthetic dataset generator and round-trip tests)
# ----------------------------------------------------------------------------------------------------------

def _relative(sample: Sample, data_root: PathLike) -> str:
    root = _root(data_root)
    source = os.path.abspath(sample.source)
    relative = os.path.relpath(source, root)
    if relative == os.curdir or relative.split(os.sep)[0] == os.pardir:
        raise ValueError(f"sample {sample.sample_id or sample.source!r}: source {source} is not under {root}")
    return relative.replace(os.sep, "/")


def _labels_text(sample: Sample) -> str:
    if not sample.all_labels or min(sample.all_labels) < 0:
        raise ValueError(f"sample {sample.sample_id or sample.source!r} has no label to write")
    return " ".join(str(label) for label in sample.all_labels)


def _write_lines(path: PathLike, lines: Iterable[str]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return path


def write_video_list(path: PathLike, samples: Iterable[Sample], data_root: PathLike) -> Path:
    """`<relative/path> <label> [<label> ...]` per sample, paths relative to data_root."""
    return _write_lines(path, [f"{_relative(s, data_root)} {_labels_text(s)}" for s in samples])


def write_frame_list(path: PathLike, samples: Iterable[Sample], data_root: PathLike) -> Path:
    """`<dir> <num_frames> <label>` per sample; `<dir> <offset> <num_frames> <label>` for every line as soon as one
    sample has a non-zero start_frame (one file, one shape)."""
    samples = list(samples)
    with_offset = any(s.start_frame for s in samples)
    lines = []
    for s in samples:
        if s.num_frames is None or s.label < 0:
            raise ValueError(f"sample {s.sample_id or s.source!r}: a frame list needs num_frames and a label")
        offset = f"{s.start_frame} " if with_offset else ""
        lines.append(f"{_relative(s, data_root)} {offset}{s.num_frames} {s.label}")
    return _write_lines(path, lines)


def write_finegym_split(path: PathLike, entries: Iterable[Sample | tuple[str, int]]) -> Path:
    """`<clip_id> <label>` per entry; an entry is a Sample (its sample_id and label) or a (clip_id, label) pair."""
    lines = []
    for entry in entries:
        clip_id, label = (entry.sample_id, entry.label) if isinstance(entry, Sample) else entry
        if parse_finegym_clip_id(clip_id) is None:
            raise ValueError(f"not a FineGym clip id: {clip_id!r} (expected <youtube_id>_E_<6d>_<6d>_A_<4d>_<4d>)")
        if int(label) < 0:
            raise ValueError(f"clip {clip_id!r} has no label to write")
        lines.append(f"{clip_id} {int(label)}")
    return _write_lines(path, lines)
