"""The `inline-ipsec` command: the demo (main job) and the quick bench."""
from __future__ import annotations

import json
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


def test_bench_writes_json(tmp_path, capsys):
    path = tmp_path / "b.json"
    assert main(["bench", "--sizes", "64", "--rounds", "20", "--json", str(path)]) == 0
    data = json.loads(path.read_text())
    row = data["rows"][0]
    assert row["size"] == 64 and row["pfe_encrypt_pps"] > 0
    assert 0 < row["encrypt_vs_raw"] < 5
    assert "openssl" in data["machine"]


def test_bad_arguments_exit_2():
    with pytest.raises(SystemExit) as exc:
        main(["bench", "--sizes", "5"])
    assert exc.value.code == 2
    assert main([]) == 2


def test_console_script_module_entry():
    r = subprocess.run([sys.executable, "-m", "inline_ipsec", "--version"],
                       capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("inline-ipsec ")
