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
