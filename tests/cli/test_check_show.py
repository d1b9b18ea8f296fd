"""`inline-ipsec check FILE`, and `inline-ipsec run` + `inline-ipsec show` over the control
socket."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from inline_ipsec.cli import main
from inline_ipsec.gateway.control import ControlError, query
from inline_ipsec.gateway.demo_config import DEMO_VPNS, demo_config

REASONS = {
    "vpn-ah": "AH protocol not supported by PFE",
    "vpn-cbc": "encryption algorithm aes-cbc-256 not supported by PFE (AES-GCM 128/256 only)",
    "vpn-chacha": "encryption algorithm chacha20-poly1305 not supported by PFE "
                  "(AES-GCM 128/256 only)",
    "vpn-window": "anti-replay window 8192 > 4096",
    "vpn-lifesize": "lifetime-kilobytes configured",
    "vpn-p2mp": "point-to-multipoint deployment not supported by PFE",
    "vpn-multi": "2 child SA pairs in one tunnel (PFE supports 1)",
}


@pytest.fixture
def conf_a(tmp_path: Path) -> Path:
    p = tmp_path / "a.conf"
    p.write_text(demo_config("a"))
    return p


def test_check_good_config_every_cpu_reason(conf_a: Path, capsys) -> None:
    assert main(["check", str(conf_a)]) == 0
    out = capsys.readouterr().out
    blocks = out.split("VPN Name: ")[1:]
    verdicts = {b.split("\n")[0]: b for b in blocks}
    assert list(verdicts) == [v.name for v in DEMO_VPNS]
    for v in DEMO_VPNS:
        block = verdicts[v.name]
        if v.expect == "Yes":
            assert block.startswith(f"{v.name}\n  Hardware Offloaded: Yes\n")
            assert "Offload failure reason" not in block
        else:
            assert f"  Hardware Offloaded: No\n    Offload failure reason: " \
                   f"{REASONS[v.name]}\n" in block
    assert "11 VPNs: 4 offloaded to the PFE, 7 on the CPU (license: valid)" in out


def test_check_hw_offload_disable_and_license(tmp_path: Path, capsys) -> None:
    p = tmp_path / "off.conf"
    p.write_text(demo_config("a", hw_offload_disable=True).replace(
        "set system license ipsec-offload permanent",
        "set system license ipsec-offload expires 2026-01-31"))
    assert main(["check", str(p), "--today", "2026-02-01"]) == 0
    out = capsys.readouterr().out
    assert "Hardware Offloaded: Yes" not in out
    assert out.count("Offload failure reason: hw-offload-disable configured") == 11
    assert out.count("no valid IPsec offload license (expired 2026-01-31)") == 11
    assert "(license: expired)" in out


def test_check_bad_config_line_numbers(tmp_path: Path, capsys) -> None:
    lines = demo_config("a").splitlines()
    lines[9] = lines[9].replace("ike-policy ike-1", "ike-policy missing")     # line 10
    lines.insert(20, "set security ipsec proposal p-x lifetime-kilobytes 5")  # line 21
    lines.insert(21, "set security ipsec vpn v bind-interface ge-0/0/0.0")   # line 22
    p = tmp_path / "bad.conf"
    p.write_text("\n".join(lines) + "\n")
    assert main(["check", str(p)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    err = captured.err.splitlines()
    assert err[0].startswith(f"{p}:10: error: ike gateway peer-v4: ike-policy 'missing' is "
                             "not defined")
    assert any(e.startswith(f"{p}:21: error: unexpected '5'") for e in err)
    assert any(e.startswith(f"{p}:22: error:") and "st0.<unit>" in e for e in err)
    assert err[-1].endswith("errors, configuration not valid")


def test_check_usage_errors_exit_2(tmp_path: Path, capsys) -> None:
    assert main(["check", str(tmp_path / "missing.conf")]) == 2
    assert "cannot read" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["check"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main(["check", "x.conf", "--today", "yesterday"])
    assert exc.value.code == 2


def test_show_without_a_gateway_fails(tmp_path: Path, capsys) -> None:
    assert main(["show", "security", "flow", "statistics", "--control",
                 str(tmp_path / "none.sock")]) == 1
    assert "no gateway is listening" in capsys.readouterr().err


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the gateway never opened its control socket"
        time.sleep(0.05)


def test_run_and_show_over_the_control_socket(tmp_path: Path, conf_a: Path, capsys) -> None:
    conf_b = tmp_path / "b.conf"
    conf_b.write_text(demo_config("b"))
    sock = tmp_path / "gw.sock"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "inline_ipsec", "run", str(conf_a), "--peer", str(conf_b),
         "--prekeyed", "--nat-t", "vpn-natt", "--duration", "3", "--control", str(sock)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        _wait_for(sock, proc)
        assert main(["show", "security", "ipsec", "security-associations",
                     "--control", str(sock)]) == 0
        summary = capsys.readouterr().out
        assert "Total active tunnels: 11     Total IPsec sas: 12" in summary
        assert "ESP:aes-cbc-256/sha256" in summary and " 4500 198.51.100.1" in summary
        assert main(["show", "security", "ipsec", "security-associations", "detail",
                     "vpn-name", "vpn-natt", "--control", str(sock)]) == 0
        detail = capsys.readouterr().out
        assert "Hardware Offloaded: Yes" in detail and "Packet Encapsulation: UDP" in detail
        time.sleep(0.5)                         # the run's test traffic moves the counters
        flow = query(str(sock), "security flow statistics")
        offload = int(flow.split("Services-offload packets processed: ")[1].split()[0])
        assert offload > 0
        assert "Decrypted packets:" in query(str(sock), "security ipsec statistics")
        assert main(["show", "security", "bogus", "--control", str(sock)]) == 1
        assert "unknown command" in capsys.readouterr().err
        out, err = proc.communicate(timeout=20)           # it stops by itself
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "inline-ipsec gateway running: 11 tunnels (4 offloaded, 7 on the CPU)" in out
    assert "show requests answered" in out
    assert not sock.exists()
    with pytest.raises(ControlError):
        query(str(sock), "security flow statistics")


def test_run_stops_on_sigterm(tmp_path: Path, conf_a: Path) -> None:
    import signal
    sock = tmp_path / "gw.sock"
    proc = subprocess.Popen([sys.executable, "-m", "inline_ipsec", "run", str(conf_a),
                             "--control", str(sock)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(sock, proc)
        assert "Total active tunnels: 1 " in query(str(sock),
                                                   "security ipsec security-associations")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "stopped after" in out and not sock.exists()


def test_run_usage_and_config_errors(tmp_path: Path, capsys) -> None:
    assert main(["run", str(tmp_path / "missing.conf"), "--duration", "1"]) == 2
    bad = tmp_path / "bad.conf"
    bad.write_text("set security ipsec vpn v bind-interface st0.0\n")
    assert main(["run", str(bad), "--duration", "1", "--control",
                 str(tmp_path / "s.sock")]) == 1
    assert f"{bad}:1: error:" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["run", str(bad), "--duration", "-1"])
    assert exc.value.code == 2
