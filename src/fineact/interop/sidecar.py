"""The JSON description written beside every fineact export (its "sidecar"): one schema, one writer, one reader.

    model.safetensors -> model.json        `fineact.engine.checkpoints.export_weights`: the weights' config and
                                           label levels, to rebuild the model
    model.onnx        -> model.onnx.json   `fineact.interop.export_model` (also .pt, .pt2): the graph's inputs,
                                           outputs and normalisation, for deployment code

Every sidecar (version 2) has the header
    "fineact_export": 2     the schema version
    "format":               what the described file is: "safetensors" or one of EXPORT_FORMATS
    "file":                 the described file's name
    "fineact_version", "torch_version"
and the fields of its kind: WEIGHTS_FIELDS for safetensors weights, GRAPH_FIELDS for exported graphs.

Files written before version 2 stay readable: weights sidecars said {"format": "fineact-export-1", "config",
"levels", "trained_levels"} (no header), graph sidecars had "fineact_export": 1 and the version-2 fields.
`read_sidecar` returns both with the version-2 "format".
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Collection

import torch

from fineact.errors import WeightsError

PathLike = str | os.PathLike

VERSION = 2
VERSION_KEY = "fineact_export"
WEIGHTS_FORMAT = "safetensors"
EXPORT_FORMATS = {"torchscript": ".pt", "onnx": ".onnx", "exported-program": ".pt2"}  # graph format -> suffix
_WEIGHTS_V1_TAG = "fineact-export-1"  # the "format" of version-1 weights sidecars

# The fields each kind must carry, with their JSON types (other fields are free: opsets, model facts, ...).
WEIGHTS_FIELDS = {"config": dict, "levels": dict}
GRAPH_FIELDS = {"inputs": list, "input_order": list, "outputs": list, "normalisation": dict, "dynamic_batch": bool}
_HEADER_FIELDS = {"format": str, "file": str}
_JSON_TYPES = {dict: "an object", list: "a list", bool: "true or false", str: "a string"}


def sidecar_path(path: PathLike) -> Path:
    """Where the description of an exported file lives: `<stem>.json` for safetensors weights (`model.json`),
    `<file name>.json` for exported graphs (`model.onnx.json`)."""
    path = Path(path)
    if path.suffix == ".safetensors":
        return path.with_suffix(".json")
    return path.with_name(path.name + ".json")


def write_sidecar(described: PathLike, format: str, fields: dict) -> Path:
    """Write the sidecar of the exported file `described` (header + `fields`); returns its path.

    Validated before writing like on reading, so a writer's mistake fails here, not in a user's reader."""
    import fineact

    described = Path(described)
    data = {VERSION_KEY: VERSION, "format": format, "file": described.name,
            "fineact_version": fineact.__version__, "torch_version": torch.__version__, **fields}
    path = sidecar_path(described)
    _validate(data, path)
    from fineact.files import atomic_write_text

    return atomic_write_text(path, json.dumps(data, indent=1) + "\n", "export description")


def is_sidecar(path: PathLike) -> bool:
    """Whether a JSON file says it is a fineact export description (any version; valid or not)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and (VERSION_KEY in data or data.get("format") == _WEIGHTS_V1_TAG)


def read_sidecar(path: PathLike, formats: Collection[str] | None = None) -> dict:
    """The validated contents of a sidecar file (any version, see the module documentation).

    formats: the described-file formats the caller can use (e.g. {"safetensors"}); another raises WeightsError.
    Every problem (missing or unreadable file, not a sidecar, unknown version, missing or mistyped field)
    raises WeightsError naming the file and the key."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"export description {path}: not found")
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise WeightsError(f"export description {path}: cannot be read as JSON ({err})") from None
    if not isinstance(data, dict):
        raise WeightsError(f"export description {path}: expected a JSON object, found {type(data).__name__}")
    if data.get("format") == _WEIGHTS_V1_TAG and VERSION_KEY not in data:
        data = {**data, VERSION_KEY: 1, "format": WEIGHTS_FORMAT, "file": path.with_suffix(".safetensors").name}
    _validate(data, path)
    if formats is not None and data["format"] not in formats:
        raise WeightsError(f"export description {path}: describes a {data['format']!r} file, expected one of "
                           f"{sorted(formats)}")
    return data


def _validate(data: dict, path: Path) -> None:
    version = data.get(VERSION_KEY)
    if version is None:
        raise WeightsError(f"export description {path}: missing key {VERSION_KEY!r} (the schema version); "
                           f"not a fineact export description")
    if version not in (1, VERSION) or isinstance(version, bool):
        raise WeightsError(f"export description {path}: {VERSION_KEY} is {version!r}; this fineact reads "
                           f"versions 1 and {VERSION}")
    _check_fields(data, _HEADER_FIELDS, path)
    fmt = data["format"]
    if fmt == WEIGHTS_FORMAT:
        _check_fields(data, WEIGHTS_FIELDS, path)
    elif fmt in EXPORT_FORMATS:
        _check_fields(data, GRAPH_FIELDS, path)
        for key in ("inputs", "outputs"):
            for i, entry in enumerate(data[key]):
                if not isinstance(entry, dict) or not isinstance(entry.get("shape"), list):
                    raise WeightsError(f"export description {path}: {key}[{i}] needs a 'shape' list, found "
                                       f"{json.dumps(entry)[:80]}")
    else:
        raise WeightsError(f"export description {path}: 'format' is {fmt!r}, expected {WEIGHTS_FORMAT!r} or one "
                           f"of {list(EXPORT_FORMATS)}")


def _check_fields(data: dict, fields: dict[str, type], path: Path) -> None:
    for key, kind in fields.items():
        if key not in data:
            raise WeightsError(f"export description {path}: missing key {key!r} ({_JSON_TYPES[kind]})")
        if not isinstance(data[key], kind):
            raise WeightsError(f"export description {path}: {key!r} should be {_JSON_TYPES[kind]}, found "
                               f"{type(data[key]).__name__}")


__all__ = ["EXPORT_FORMATS", "GRAPH_FIELDS", "VERSION", "WEIGHTS_FIELDS", "WEIGHTS_FORMAT", "is_sidecar",
           "read_sidecar", "sidecar_path", "write_sidecar"]
