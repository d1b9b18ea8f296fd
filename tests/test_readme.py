"""Every Python example of the README runs as printed (from the repository's root, as the README
says), and so does every `inline-ipsec check` command line in it."""
from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from inline_ipsec.cli import main

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
TEXT = README.read_text()
PYTHON_BLOCKS = re.findall(r"```python\n(.*?)```", TEXT, re.S)
SHELL_LINES = [line.strip() for block in re.findall(r"```sh\n(.*?)```", TEXT, re.S)
               for line in block.splitlines()]
CHECK_LINES = [line.split("#")[0].strip() for line in SHELL_LINES
               if line.startswith("inline-ipsec check ")]


def _run(block: str) -> dict:
    namespace: dict = {"__name__": "__readme__"}
    exec(compile(block, str(README), "exec"), namespace)
    return namespace


def test_the_readme_has_the_examples_this_file_checks() -> None:
    assert len(PYTHON_BLOCKS) >= 2
    assert PYTHON_BLOCKS[0].startswith("import os\n")
    assert any("examples/srx.conf" in b for b in PYTHON_BLOCKS)
    assert CHECK_LINES


@pytest.mark.parametrize("index", range(len(PYTHON_BLOCKS)))
def test_every_python_block_runs(index: int, monkeypatch, capsys) -> None:
    monkeypatch.chdir(ROOT)
    namespace = _run(PYTHON_BLOCKS[index])
    out = capsys.readouterr().out
    block = PYTHON_BLOCKS[index]
    if block.startswith("import os\n"):   # the quick example
        assert namespace["pfe"].counters(namespace["h"]).packets == 33
        assert "SaCounters(packets=33" in out
    if "examples/mnha-node" in block:
        assert "Status: BACKUP" in out and "Status : ACTIVE" in out
        assert "Cold Sync Status: COMPLETE" in out
    if "examples/srx.conf" in block:
        assert out.count("VPN Name: ") == 2
        assert "VPN Name: to-hq\n" in out and "Hardware Offloaded: Yes" in out
        assert "VPN Name: to-branch\n" in out and "Hardware Offloaded: No" in out


@pytest.mark.parametrize("line", CHECK_LINES)
def test_every_check_command_runs(line: str, monkeypatch, capsys) -> None:
    monkeypatch.chdir(ROOT)
    argv = shlex.split(line)
    assert argv[0] == "inline-ipsec"
    assert main(argv[1:]) == 0
    assert "Hardware Offloaded: " in capsys.readouterr().out
