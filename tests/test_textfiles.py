"""Line-numbered text and JSON reading: the line numbers errors name are the ones the user's editor shows."""

import re

import pytest

from fineact.data.textfiles import closest_hint, read_json_list, read_numbered_lines, read_text
from fineact.errors import AnnotationError


def write(path, data: bytes):
    path.write_bytes(data)
    return path


def test_numbered_lines_keep_editor_line_numbers(tmp_path):
    # blank and comment lines are dropped but still counted; CRLF and trailing spaces are removed; a form feed
    # inside a line does not split it (str.splitlines would, and shift every later number)
    path = write(tmp_path / "a.txt", b"\xef\xbb\xbffirst  \r\n\n# note\n  \nsecond\x0cpart\nthird\n")
    assert read_numbered_lines(path) == [(1, "first"), (5, "second\x0cpart"), (6, "third")]
    assert read_numbered_lines(path, skip_comments=False)[1] == (3, "# note")


def test_read_text_errors_name_the_file_and_line(tmp_path):
    with pytest.raises(AnnotationError, match=re.escape(f"{tmp_path / 'missing.txt'}: group file not found")):
        read_text(tmp_path / "missing.txt", "group file")
    path = write(tmp_path / "latin1.txt", b"ok\nalso ok\ncaf\xe9\n")
    with pytest.raises(AnnotationError, match=re.escape(f"{path}:3: expected UTF-8 text, found the byte 0xe9")):
        read_text(path, "label file")


def test_json_list_items_carry_the_line_they_start_on(tmp_path):
    path = write(tmp_path / "a.json", b'[\n  {"a": 1},\n\n  [2,\n   3], "x"\n]\n')
    assert read_json_list(path) == [(2, {"a": 1}), (4, [2, 3]), (5, "x")]
    assert read_json_list(write(tmp_path / "empty.json", b" [ ] ")) == []


@pytest.mark.parametrize("text, line, message", [
    (b'{"a": 1}', 1, "expected a JSON list '['"),
    (b'[1,\n 2\n 3]', 3, "expected ',' or ']' after a list item"),
    (b'[1,\n {"a": }]', 2, "invalid JSON"),
    (b'[1]\n\n[2]', 3, "expected the end of the file after the JSON list"),
])
def test_json_list_errors_name_the_line(tmp_path, text, line, message):
    path = write(tmp_path / "bad.json", text)
    with pytest.raises(AnnotationError, match=re.escape(f"{path}:{line}: ") + ".*" + re.escape(message)):
        read_json_list(path)


def test_closest_hint():
    assert closest_hint("elemnt", ["set", "element", "event"]) == " (closest: 'element', 'event')"  # best first
    assert closest_hint("zzz", ["event", "set"]) == ""
