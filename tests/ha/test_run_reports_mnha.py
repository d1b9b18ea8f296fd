"""`inline-ipsec run` runs one process as one node: for a configuration with `chassis
high-availability` it says, at start-up, that MNHA is not carried out there (it runs
in-process with inline_ipsec.ha), instead of running the node as if it were standalone."""
from __future__ import annotations

import io
from pathlib import Path

from inline_ipsec.io.runner import run_gateway

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_run_says_mnha_is_not_carried_out(tmp_path: Path) -> None:
    out = io.StringIO()
    assert run_gateway(str(EXAMPLES / "mnha-node1.conf"), control_path=str(tmp_path / "n.sock"),
                       duration=0.2, prekeyed=True, out=out, install_signals=False) == 0
    text = out.getvalue()
    assert "not carried out: chassis high-availability: this process runs as a standalone " \
           "node" in text
    assert "docs/mnha.md" in text


def test_run_without_mnha_says_nothing_of_it(tmp_path: Path) -> None:
    conf = tmp_path / "plain.conf"
    text = (EXAMPLES / "mnha-node1.conf").read_text()
    conf.write_text("\n".join(line for line in text.splitlines()
                              if "chassis high-availability" not in line
                              and "ha-link-encryption" not in line) + "\n")
    out = io.StringIO()
    rc = run_gateway(str(conf), control_path=str(tmp_path / "p.sock"), duration=0.2,
                     prekeyed=True, out=out, install_signals=False)
    assert rc == 0, out.getvalue()
    assert "high-availability" not in out.getvalue()


IKE_VPN = """
set interfaces st0 unit 2 family inet
set security ike proposal p1 authentication-method pre-shared-keys
set security ike proposal p1 dh-group group14
set security ike proposal p1 authentication-algorithm sha-256
set security ike proposal p1 encryption-algorithm aes-256-cbc
set security ike policy pol1 proposals p1
set security ike policy pol1 pre-shared-key ascii-text "secret"
set security ike gateway g1 ike-policy pol1
set security ike gateway g1 address 198.51.100.2
set security ike gateway g1 local-address 192.0.2.10
set security ike gateway g1 external-interface lo0.0
set security ike gateway g1 version {version}
set security ipsec proposal ip1 protocol esp
set security ipsec proposal ip1 encryption-algorithm aes-128-gcm
set security ipsec policy ipol1 proposals ip1
set security ipsec vpn v-ike bind-interface st0.2
set security ipsec vpn v-ike ike gateway g1
set security ipsec vpn v-ike ike ipsec-policy ipol1
"""


def _check(tmp_path: Path, capsys, version: str) -> str:
    from inline_ipsec.cli import main
    conf = tmp_path / f"{version}.conf"
    conf.write_text((EXAMPLES / "mnha-node1.conf").read_text() + IKE_VPN.format(version=version))
    assert main(["check", str(conf)]) == 0
    out = capsys.readouterr().out
    return out[out.index("v-ike"):]


def test_check_says_an_ikev1_sa_is_not_synchronised(tmp_path: Path, capsys) -> None:
    v1 = _check(tmp_path, capsys, "v1-only")
    assert "not carried out: the IKEv1 SA is not synchronised" in v1
    v2 = _check(tmp_path, capsys, "v2-only")
    assert "sequence numbers and IKE SA synchronised to the backup" in v2
    assert "IKEv1 SA" not in v2
