"""harness.results.logtable (and `harness decode`) on synthetic scenario logs."""

from __future__ import annotations

import io
import json
import struct
from pathlib import Path
from typing import Any

import pytest

from harness import cli
from harness.errors import DecodeError
from harness.results import logtable

ATTACH = struct.pack("<IBBHQii", 40, 3, 0, 24, 0x01000000, -1, 7) + struct.pack(
    "<BBHIQ", 7, 0, 16, 0, 0x1000000000AB)


def entry(kind: str, **fields: Any) -> str:
    return json.dumps({"kind": kind, **fields}) + "\n"


def good_log() -> str:
    return "".join([
        entry("header", scenario="mount", backend="fanotify", kernel="6.16.12"),
        entry("op", seq=1, label="mount tmpfs on /tmp/mnh-mount/a", ok=True, errno=None,
              raw=ATTACH.hex(), missing=[], unexpected=[], wrong=[]),
        entry("op", seq=2, label="umount /tmp/mnh-mount/a", ok=False, errno=None, raw="",
              missing=[{"event": "DETACH", "mnt_id": 171}], unexpected=[], wrong=[]),
        entry("check", ok=True, message="fine"),
        entry("check", ok=False, message="mount table unchanged"),
        entry("verdict", outcome="fail", message="missing DETACH"),
    ])


def decode(path: Path) -> tuple[int, str]:
    out = io.StringIO()
    problems = logtable.decode_log(path, out)
    return problems, out.getvalue()


def test_good_log(tmp_path: Path) -> None:
    p = tmp_path / "mount.jsonl"
    p.write_text(good_log())
    problems, text = decode(p)
    assert problems == 0
    assert "scenario mount backend fanotify kernel 6.16.12" in text
    assert "op 1: mount tmpfs on /tmp/mnh-mount/a [ok]" in text
    assert "ATTACH" in text and "mnt_id=0x1000000000ab" in text
    assert "op 2: umount /tmp/mnh-mount/a [MISMATCH]" in text
    assert "MISSING: {'event': 'DETACH', 'mnt_id': 171}" in text
    assert "check FAILED: mount table unchanged" in text
    assert "fine" not in text
    assert "verdict: fail missing DETACH" in text
    assert logtable.decode_path(p, None, io.StringIO()) == 0


def test_truncated_last_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "mount.jsonl"
    log = good_log()
    p.write_text(log + log.splitlines()[1][:57])        # cut mid-JSON, no newline
    problems, text = decode(p)
    assert problems == 1
    assert "line 7: truncated JSON" in text
    assert logtable.decode_path(p, None, io.StringIO()) == 1
    assert "1 problem(s)" in capsys.readouterr().err


def test_garbled_line_in_the_middle(tmp_path: Path) -> None:
    p = tmp_path / "mount.jsonl"
    lines = good_log().splitlines(keepends=True)
    lines.insert(2, '{"kind": "op", "seq": \x00garbage}\n')
    p.write_text("".join(lines))
    problems, text = decode(p)
    assert problems == 1
    assert "line 3: garbled JSON" in text
    assert "verdict: fail" in text                      # it goes on after the bad line


def test_not_an_object(tmp_path: Path) -> None:
    p = tmp_path / "x.jsonl"
    p.write_text("[1, 2]\n\n")
    problems, text = decode(p)
    assert problems == 1 and "not a log entry (a JSON list)" in text


def test_invalid_raw_hex(tmp_path: Path) -> None:
    p = tmp_path / "x.jsonl"
    p.write_text(entry("op", seq=1, label="l", ok=True, raw="zz12"))
    problems, text = decode(p)
    assert problems == 1
    assert "line 1: raw bytes are not valid hex" in text


def test_raw_bytes_that_do_not_decode(tmp_path: Path) -> None:
    p = tmp_path / "x.jsonl"
    p.write_text(entry("op", seq=1, label="l", ok=True, raw=(ATTACH + ATTACH[:10]).hex()))
    problems, text = decode(p)
    assert problems == 1
    assert "DECODE ERROR at offset 40: truncated event header" in text


def test_nonexistent_path(tmp_path: Path) -> None:
    with pytest.raises(DecodeError, match="does not exist"):
        logtable.decode_path(tmp_path / "nope.jsonl", None, io.StringIO())


def test_results_directory(tmp_path: Path) -> None:
    d = tmp_path / "results" / "scenarios"
    d.mkdir(parents=True)
    (d / "a.jsonl").write_text(good_log())
    (d / "b.jsonl").write_text(good_log()[:-5])
    out = io.StringIO()
    assert logtable.decode_path(tmp_path / "results", None, out) == 1
    assert out.getvalue().count("== ") == 2
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DecodeError, match="no scenario logs"):
        logtable.decode_path(empty, None, io.StringIO())


def test_raw_buffer(tmp_path: Path) -> None:
    p = tmp_path / "buf.bin"
    p.write_bytes(ATTACH * 2)
    out = io.StringIO()
    assert logtable.decode_path(p, "fanotify", out) == 0
    assert out.getvalue().count("ATTACH") == 2
    p.write_bytes(ATTACH + b"\x01")
    assert logtable.decode_path(p, "fanotify", io.StringIO()) == 1


def test_cli_decode(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.jsonl"
    good.write_text(good_log())
    assert cli.main(["decode", str(good)]) == 0
    assert "op 1: mount tmpfs" in capsys.readouterr().out
    bad = tmp_path / "bad.jsonl"
    bad.write_text(good_log()[:-3])
    assert cli.main(["decode", str(bad)]) == 1
    captured = capsys.readouterr()
    assert "truncated JSON" in captured.out
    assert "problem(s)" in captured.err
    assert cli.main(["decode", str(tmp_path / "missing.jsonl")]) == 2
    assert "does not exist" in capsys.readouterr().err
