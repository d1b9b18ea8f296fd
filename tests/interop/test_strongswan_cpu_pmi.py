"""Real traffic through our CPU path with PowerMode IPsec (and through the QAT device model)
against strongSwan: the child SA lands on the CPU engine (`hw-offload-disable`), our echo
requests are built by the PMI vector loop and decrypted by charon (kernel-libipsec), charon's
replies (ESP in UDP, its own IVs) are decrypted by our vector loop; charon's counters and ours
agree. The harness is the PFE's (test_strongswan_traffic.py, README.md in this folder)."""
from __future__ import annotations

import pytest
from test_strongswan_traffic import (  # noqa: F401  (fixtures)
    PINGS,
    SCENARIOS,
    _our_config,
    _run,
    _swanctl,
    _traffic,
    charon_ns,
    topology,
)

from inline_ipsec.config import Config, License, QatSettings
from inline_ipsec.cpu import CpuEngine
from inline_ipsec.gateway import Gateway
from inline_ipsec.ike import ChildSaUp, IkeSaUp
from traffic_harness import OurSide

pytestmark = pytest.mark.interop


async def _scenario(topo, charon, config: Config) -> dict:
    side = await OurSide.create(topo.ours, keepalive_interval=20.0)
    side.gw = Gateway(config=config, name="py", hw_offload_disable=True,
                      license=License(expires=None))
    try:
        charon.load(_swanctl("psk-gcm128", topo, topo.ours, side.ep.natt_port, False))
        cfg = _our_config("psk-gcm128", topo, 4500, None)
        peer = (topo.theirs, 500)
        side.ep.manager.add_peer(f"{peer[0]}/32", cfg)
        side.ep.connect(cfg, peer)
        await side.wait_for(IkeSaUp)
        up = await side.wait_for(ChildSaUp)
        child = up.child
        assert child.cipher == SCENARIOS["psk-gcm128"][2] and child.udp_encap
        rec = side.tunnel()
        assert isinstance(rec.engine, CpuEngine) and not rec.offloaded
        traffic = await _traffic(side, charon, topo, child)
        return {"traffic": traffic, "pmi": side.gw.cpu.pmi_counters(),
                "qat": side.gw.cpu.qat_counters(),
                "show": side.gw.show("security flow pmi statistics")}
    finally:
        side.close()
        if side.gw.cpu.qat is not None:
            side.gw.cpu.qat.close()


@pytest.mark.parametrize("mode", ["pmi", "qat"])
def test_traffic_through_our_cpu_path_in_vectors(topology, charon_ns, mode):  # noqa: F811
    config = Config(power_mode_ipsec=True,
                    power_mode_ipsec_qat=QatSettings(ring_depth=8, batch_size=4)
                    if mode == "qat" else None)
    r = _run(charon_ns, topology, _scenario(topology, charon_ns, config))
    pmi = r["pmi"]
    # every echo request was encrypted, every reply decrypted, by the vector loops
    assert pmi.vector_encrypt == PINGS and pmi.regular_encrypt == 0, pmi
    assert pmi.vector_decrypt == PINGS and pmi.regular_decrypt == 0, pmi
    if mode == "qat":
        assert r["qat"].requests == r["qat"].responses == 2 * PINGS and r["qat"].errors == 0
        assert "QAT: Enabled, Ring depth: 8, Batch size: 4" in r["show"]
