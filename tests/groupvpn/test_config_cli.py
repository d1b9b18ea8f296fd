"""`set security group-vpn ...`: parsing, cross references with line numbers, the runtime
objects built from it, `check` verdicts, and `run` + `show` of a key server and a member in
two processes over loopback UDP."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from inline_ipsec.cli import main
from inline_ipsec.config import ConfigurationErrors, load_config, load_config_file

DATA = Path(__file__).parent.parent / "data" / "groupvpn"


def test_server_configuration() -> None:
    gv = load_config_file(DATA / "server.conf").group_vpn
    assert gv is not None and gv.is_server and not gv.is_member
    (g,) = gv.server_groups()
    assert (g.name, g.group_id, g.member_threshold) == ("G1", 1, 100)
    assert list(g.members) == ["192.0.2.11", "192.0.2.12", "192.0.2.13"]
    assert (g.activation_time_delay, g.anti_replay_time_window) == (15, 120)
    (sa,) = g.ipsec_sas
    assert (sa.match.source, sa.match.destination, sa.lifetime_seconds) == \
        ("10.0.0.0/8", "10.0.0.0/8", 3600)
    assert g.kek_lifetime_seconds == 7200 and g.sig_hash == "sha-256"
    ike = dict(gv.server_ike())
    assert set(ike) == {"192.0.2.11", "192.0.2.12", "192.0.2.13"}
    cfg = ike["192.0.2.11"]
    assert cfg.psk == b"group-vpn-secret" and cfg.proposals[0].dh_group == 14
    assert cfg.natt is False and cfg.children == []


def test_member_configuration_and_unsupported_statements() -> None:
    gv = load_config_file(DATA / "member.conf").group_vpn
    (vpn,) = gv.member_vpns()
    assert (vpn.name, vpn.group_id, vpn.server) == ("GV", 1, ("192.0.2.1", 848))
    assert vpn.local_address == "192.0.2.11"
    assert gv.unsupported == ((17, "recovery-probe"),)


BROKEN = """\
set security group-vpn server ike policy POL proposals NOPE
set security group-vpn server ike gateway GW ike-policy POL
set security group-vpn server ike gateway GW address 192.0.2.5
set security group-vpn server group G ipsec-sa S proposal MISSING
set security group-vpn server group G ike-gateway GW
set security group-vpn server group H group-id 7
set security group-vpn server group H ike-gateway UNKNOWN
set security group-vpn server group I group-id 7
set security group-vpn member ipsec vpn V group 1
"""


def test_cross_references_are_reported_with_lines() -> None:
    with pytest.raises(ConfigurationErrors) as exc:
        load_config(BROKEN)
    text = "\n".join(str(e) for e in exc.value.errors)
    for needle in ("line 1: group-vpn server ike policy POL: proposal NOPE is not defined",
                   "line 1: group-vpn server ike policy POL: no pre-shared-key",
                   "line 4: group-vpn server group G: no group-id",
                   "line 4: group-vpn server group G ipsec-sa S: proposal MISSING",
                   "line 6: group-vpn server group H: no ipsec-sa",
                   "line 7: group-vpn server group H: ike-gateway UNKNOWN is not defined",
                   "line 8: group-vpn server group I: group-id 7 is also group H's",
                   "line 9: group-vpn member ipsec vpn V: ike-gateway (missing)"):
        assert needle in text, needle


@pytest.mark.parametrize("line, expected", [
    ("set security group-vpn server group G group-id 0", "a group ID (1..4294967295)"),
    ("set security group-vpn server ipsec proposal P encryption-algorithm aes-128-gcm",
     "aes-128-cbc, aes-192-cbc, aes-256-cbc"),
    ("set security group-vpn member ike policy P mode aggressive", "'main'"),
    ("set security group-vpn server group G ipsec-sa S match-policy M source 10.0.0.1",
     "an IP prefix"),
    ("set security group-vpn server group G server-member-communication "
     "sig-hash-algorithm md5", "sha-256, sha-384"),
    ("set security group-vpn member ipsec vpn V traceoptions", "one of: ike-gateway"),
    ("set security group-vpn server ipsec vpn V", "'proposal'"),
])
def test_syntax_errors(line: str, expected: str) -> None:
    with pytest.raises(ConfigurationErrors) as exc:
        load_config(line)
    assert expected in str(exc.value.errors[0]) and exc.value.errors[0].line == 1


def test_multicast_rekeys_are_reported_not_dropped() -> None:
    text = (DATA / "server.conf").read_text() + \
        "set security group-vpn server group G1 server-member-communication " \
        "communication-type multicast\n"
    gv = load_config(text).group_vpn
    assert any("multicast" in what for _, what in gv.unsupported)


def test_check_gives_the_verdict(capsys) -> None:
    assert main(["check", str(DATA / "server.conf")]) == 0
    out = capsys.readouterr().out
    assert "Group VPN Server Group: G1, Group Id: 1" in out
    assert "Hardware Offloaded: No\n    Offload failure reason: group VPN deployment not " \
        "supported by PFE" in out
    assert "Verdict: can run" in out
    assert main(["check", str(DATA / "member.conf")]) == 0
    out = capsys.readouterr().out
    assert "Group VPN Member VPN: GV, Group Id: 1" in out and "Verdict: can register" in out
    assert "not carried out: line 17: recovery-probe" in out


def _loopback(conf: Path, tmp: Path) -> Path:
    text = re.sub(r"192\.0\.2\.1(\d)", r"127.0.0.1\1", conf.read_text())
    text = re.sub(r"192\.0\.2\.1\b", "127.0.0.1", text)
    out = tmp / conf.name
    out.write_text(text)
    return out


@pytest.mark.slow
def test_run_key_server_and_member_then_show(tmp_path: Path) -> None:
    ks_conf, gm_conf = (_loopback(DATA / n, tmp_path) for n in ("server.conf", "member.conf"))
    port = 20000 + os.getpid() % 20000
    exe = [sys.executable, "-m", "inline_ipsec"]
    ks_sock, gm_sock = str(tmp_path / "ks.sock"), str(tmp_path / "gm.sock")
    ks = subprocess.Popen(exe + ["run", str(ks_conf), "--ike", f"127.0.0.1:{port}",
                                 "--duration", "20", "--control", ks_sock],
                          stdout=subprocess.PIPE, text=True)
    gm = None
    try:
        assert "key server on udp 127.0.0.1" in ks.stdout.readline()
        gm = subprocess.Popen(exe + ["run", str(gm_conf), "--ike", f"127.0.0.11:{port}",
                                     "--ike-peer", f"127.0.0.1:{port}", "--duration", "20",
                                     "--control", gm_sock],
                              stdout=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 15
        while True:
            line = gm.stdout.readline()
            if "registered with group 1" in line:
                break
            assert line and time.monotonic() < deadline, "member did not register"

        def show(sock: str, *words: str) -> str:
            return subprocess.run(exe + ["show", *words, "--control", sock],
                                  capture_output=True, text=True, check=True).stdout

        regs = show(ks_sock, "security", "group-vpn", "server", "registered-members")
        assert "Total number of registered members: 1" in regs and "127.0.0.11" in regs
        sas = show(gm_sock, "security", "group-vpn", "member", "ipsec",
                   "security-associations")
        assert "Total active tunnels: 1" in sas and "ESP:aes-cbc-256/sha256" in sas
        detail = show(gm_sock, "security", "group-vpn", "member", "ipsec",
                      "security-associations", "detail")
        assert "Offload failure reason: group VPN deployment not supported by PFE" in detail
        kek = show(gm_sock, "security", "group-vpn", "member", "kek",
                   "security-associations")
        assert "127.0.0.1" in kek and "Ready" in kek
    finally:
        for p in (gm, ks):
            if p is not None:
                p.terminate()
                p.wait(timeout=10)


def test_run_modes(tmp_path: Path) -> None:
    from inline_ipsec.groupvpn.runner import group_vpn_mode
    root = Path(__file__).parents[2]
    mixed = tmp_path / "mixed.conf"
    mixed.write_text((root / "examples" / "srx.conf").read_text() + "\n" +
                     (DATA / "member.conf").read_text())
    assert group_vpn_mode(str(DATA / "server.conf")) == "only"
    assert group_vpn_mode(str(mixed)) == "mixed"
    assert group_vpn_mode(str(root / "examples" / "srx.conf")) is None
