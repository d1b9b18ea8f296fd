"""`set security flow power-mode-ipsec[-qat]` on a gateway: the CPU path's mode, its shows,
and the same traffic outcome in every mode."""
from __future__ import annotations

import pytest
from gw_helpers import FIXED, small_config
from inline_ipsec.gateway.traffic import udp_packet

from inline_ipsec.gateway import Gateway, WireLink

MODES = {
    "off": "",
    "pmi": "set security flow power-mode-ipsec\n",
    "qat": "set security flow power-mode-ipsec-qat ring-depth 4\n"
           "set security flow power-mode-ipsec-qat batch-size 2\n",
}


def pair(extra: str) -> tuple[Gateway, Gateway, WireLink]:
    a = Gateway.from_text(small_config("a", "set security ipsec hw-offload-disable\n" + extra),
                          name="gw-a", clock=lambda: FIXED)
    b = Gateway.from_text(small_config("b", "set security ipsec hw-offload-disable\n" + extra),
                          name="gw-b", clock=lambda: FIXED)
    return a, b, WireLink(a, b)


def stat(text: str, label: str) -> int:
    return int(next(line for line in text.splitlines()
                    if line.strip().startswith(label + ":")).split()[-1])


@pytest.mark.parametrize("mode", MODES)
def test_traffic_and_shows_in_each_mode(mode):
    a, b, link = pair(MODES[mode])
    try:
        assert a.cpu.pmi == (mode != "off") and (a.cpu.qat is not None) == (mode == "qat")
        pkts = [udp_packet("10.1.0.5", "10.2.0.5", bytes([k]) * (40 + k)) for k in range(20)]
        assert link.send(a, pkts).delivered == pkts
        status = a.show("security flow status")
        assert f"Flow power mode IPsec: {'Disabled' if mode == 'off' else 'Enabled'}" in status
        assert f"Flow power mode IPsec QAT: {'Enabled' if mode == 'qat' else 'Disabled'}" \
            in status
        tx, rx = a.show("security flow pmi statistics"), b.show("security flow pmi statistics")
        if mode == "off":
            assert stat(tx, "Vectors") == 0 and "QAT: Disabled" in tx
            assert tx.count(":                                      20") == 1   # one by one
        else:
            assert stat(tx, "Vectors") >= 1 and stat(rx, "Vectors") >= 1
            vec = tx.split("Packets processed in vectors:")[1]
            assert stat(vec, "Encrypt") == 20
            assert stat(rx.split("Packets processed in vectors:")[1], "Decrypt") == 20
        if mode == "qat":
            assert "QAT: Enabled, Ring depth: 4, Batch size: 2" in tx
            assert stat(tx, "Requests") == stat(tx, "Responses") == 20
            assert stat(tx, "Maximum in flight") <= 4
    finally:
        for g in (a, b):
            if g.cpu.qat is not None:
                g.cpu.qat.close()
