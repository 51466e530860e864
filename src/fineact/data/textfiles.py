"""Text and JSON files read with line numbers, so that every error can name `file:line`.

The annotation readers (`fineact.data.annotations`), the label-file readers (`fineact.labels`) and the group
files of `fineact.analysis.confusion` all read user files through these: the whole file as UTF-8 text, its
non-blank lines with their numbers, or the items of a top-level JSON list with the line each starts on. An
unreadable or malformed file raises `AnnotationError` with the path, the line, what was expected and what was
found; `closest_hint` is the "(closest: ...)" those messages add to an unknown name.
"""

from __future__ import annotations

import difflib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from fineact.errors import AnnotationError

PathLike = str | os.PathLike

__all__ = ["read_text", "read_numbered_lines", "read_json_list", "closest_hint"]


def read_text(path: PathLike, kind: str) -> str:
    """The whole file as text; an unreadable or non-UTF-8 file is an AnnotationError, not an OSError."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise AnnotationError(f"{path}: {kind} not found") from None
    except OSError as err:
        raise AnnotationError(f"{path}: cannot read {kind}: {err.strerror or err}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise AnnotationError(f"{path}:{line}: expected UTF-8 text, found the byte "
                              f"0x{data[err.start]:02x} that is not valid UTF-8") from None
    # A byte-order mark (files saved by some Windows editors) is not part of the first field.
    return text.removeprefix("\ufeff")


def read_numbered_lines(path: PathLike, kind: str = "annotation file", *,
                        skip_comments: bool = True) -> list[tuple[int, str]]:
    """(1-based line number, line without its end-of-line and trailing spaces), blank lines dropped.

    Only '\\n' ends a line (with an optional '\\r' before it): str.splitlines() would also split on form feeds
    and Unicode separators, and the line numbers would then disagree with the user's editor. With
    skip_comments, lines whose first non-space character is '#' are dropped as well.
    """
    lines = []
    for number, raw in enumerate(read_text(path, kind).split("\n"), start=1):
        text = raw.rstrip()
        if not text.strip() or (skip_comments and text.lstrip().startswith("#")):
            continue
        lines.append((number, text))
    return lines


def read_json_list(path: PathLike, kind: str = "JSON file") -> list[tuple[int, object]]:
    """The items of a top-level JSON list, each with the line its text starts on (for error messages).

    The list is decoded item by item with `raw_decode` so that a bad record can be reported at its line, which
    `json.load` cannot tell us once the whole file is a Python list.
    """
    text = read_text(path, kind)
    decoder = json.JSONDecoder()
    where = _JsonCursor(path, text)
    where.skip_space()
    where.expect("[", "a JSON list '[' at the start of the file")
    items: list[tuple[int, object]] = []
    where.skip_space()
    if where.peek() == "]":
        where.pos += 1
    else:
        while True:
            where.skip_space()
            start = where.pos
            try:
                item, where.pos = decoder.raw_decode(text, start)
            except json.JSONDecodeError as err:
                raise AnnotationError(f"{path}:{err.lineno}: expected a JSON value (item {len(items)} of the "
                                      f"list), found invalid JSON: {err.msg}") from None
            except RecursionError:
                raise AnnotationError(f"{path}:{where.line_of(start)}: JSON nested too deeply") from None
            except ValueError as err:  # e.g. an integer with more digits than Python converts
                raise AnnotationError(f"{path}:{where.line_of(start)}: expected a JSON value, found one "
                                      f"Python cannot read ({err})") from None
            items.append((where.line_of(start), item))
            where.skip_space()
            if where.peek() == ",":
                where.pos += 1
                continue
            where.expect("]", "',' or ']' after a list item")
            break
    where.skip_space()
    if where.pos != len(text):
        raise AnnotationError(f"{path}:{where.line_of(where.pos)}: expected the end of the file after the "
                              f"JSON list, found {text[where.pos:where.pos + 20]!r}")
    return items


@dataclass
class _JsonCursor:
    """Position in a JSON text, with line numbers for error messages."""

    path: PathLike
    text: str
    pos: int = 0

    def skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in " \t\r\n":
            self.pos += 1

    def peek(self) -> str:
        return self.text[self.pos:self.pos + 1]

    def line_of(self, pos: int) -> int:
        return self.text.count("\n", 0, pos) + 1

    def expect(self, char: str, what: str) -> None:
        if self.peek() != char:
            found = repr(self.text[self.pos:self.pos + 20]) if self.pos < len(self.text) else "the end of the file"
            raise AnnotationError(f"{self.path}:{self.line_of(self.pos)}: expected {what}, found {found}")
        self.pos += 1


def closest_hint(name: str, candidates: Iterable[str]) -> str:
    """' (closest: 'a', 'b')' for an unknown name, or '' when nothing is close; for error messages."""
    matches = difflib.get_close_matches(name, list(candidates), n=3, cutoff=0.5)
    return f" (closest: {', '.join(repr(m) for m in matches)})" if matches else ""
