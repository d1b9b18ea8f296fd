"""The `inline-ipsec` command: the demo (main job) and the quick bench."""
from __future__ import annotations

import subprocess
import sys

import pytest

from inline_ipsec.cli import main


def test_demo_runs_and_shows_offload_counters_and_throughput(capsys):
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "Hardware Offloaded: Yes" in out
    assert "OK, REPLAY_DUPLICATE, AUTH_FAILED, UNKNOWN_SPI" in out
    assert "vpn-natt" in out and "enc/raw" in out
    # 256 good packets per tunnel each way, plus the one genuine packet of the bad-packet test
    assert " 257 " in out and out.count(" 256 ") >= 3


def test_no_command_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    assert "demo" in capsys.readouterr().out


def test_console_script_module_entry():
    r = subprocess.run([sys.executable, "-m", "inline_ipsec", "--version"],
                       capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("inline-ipsec ")
