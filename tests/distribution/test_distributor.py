"""Distributor: install on the chosen engine, spread over PFEs, rekey make-before-break,
pending DF/DSCP changes, event history. Fake engines record every operation in order."""
from __future__ import annotations

import datetime as dt
from typing import Any, Callable

import pytest

from inline_ipsec.config import License
from inline_ipsec.distribution import Distributor, Placement, Tunnel
from inline_ipsec.errors import CapacityError

T0 = dt.datetime(2025, 9, 14, 9, 34, 29)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def chassis(make_engine: Callable[..., Any], clock: Clock) -> tuple[Distributor, list[Any], Any]:
    pfes = [make_engine("pfe", "pfe0"), make_engine("pfe", "pfe1")]
    cpu = make_engine("cpu", "cpu")
    d = Distributor(pfes, cpu, license=License(), clock=clock, slots=[(0, 0), (1, 0)])
    return d, pfes, cpu


def test_install_offloaded_inbound_first(chassis: Any, pair: Any, log: list[Any]) -> None:
    d, pfes, cpu = chassis
    out, inb = pair(0x1001, 0x2001)
    rec = d.install("vpn-1", Tunnel(), out, inb)
    assert log == [("add_inbound", "pfe0", 0x2001), ("add_outbound", "pfe0", 0x1001)]
    assert rec.offloaded and rec.engine is pfes[0] and rec.location == "FPC 0, PIC 0"
    assert rec.tunnel_id == 500001 and rec.placement == Placement("pfe")
    assert d.events("vpn-1") == [
        "Sun Sep 14 2025 09:34:29: IPsec SA negotiation succeeds (1 times)",
        "Sun Sep 14 2025 09:34:29: IPsec SA offloaded to hardware (FPC 0, PIC 0) (1 times)",
    ]
    assert d.pfe_sas_in_use == 2 and d.pfe_tunnels_in_use == 1


def test_install_on_cpu_with_reasons(chassis: Any, pair: Any) -> None:
    d, pfes, cpu = chassis
    out, inb = pair(0x1001, 0x2001)
    rec = d.install("vpn-1", Tunnel(replay_window=8192, lifetime_kilobytes=100), out, inb)
    assert not rec.offloaded and rec.engine is cpu and rec.location == "CPU"
    assert rec.placement.reasons == ("anti-replay window 8192 > 4096",
                                     "lifetime-kilobytes configured")
    assert cpu.spis() == [0x1001, 0x2001] and len(pfes[0]) == len(pfes[1]) == 0
    assert d.events("vpn-1")[-1].endswith(
        "IPsec SA not offloaded to hardware: anti-replay window 8192 > 4096; "
        "lifetime-kilobytes configured (1 times)")
    assert d.pfe_sas_in_use == 0


def test_tunnels_spread_over_pfes(chassis: Any, pair: Any) -> None:
    d, pfes, cpu = chassis
    locations = [d.install(f"v{i}", Tunnel(), *pair(0x1000 + i, 0x2000 + i)).location
                 for i in range(4)]
    assert locations == ["FPC 0, PIC 0", "FPC 1, PIC 0", "FPC 0, PIC 0", "FPC 1, PIC 0"]
    assert len(pfes[0]) == len(pfes[1]) == 4
    assert [r.tunnel_id for r in d.tunnels()] == [500001, 500002, 500003, 500004]


def test_capacity_2000th_on_pfe_2001st_on_cpu(make_engine: Any, clock: Clock,
                                              pair: Any) -> None:
    pfes = [make_engine("pfe", "pfe0"), make_engine("pfe", "pfe1")]
    cpu = make_engine("cpu", "cpu")
    d = Distributor(pfes, cpu, license=License(), clock=clock)
    for i in range(1999):
        assert d.install(f"v{i}", Tunnel(), *pair(0x10000 + i, 0x20000 + i)).offloaded
    rec = d.install("v1999", Tunnel(), *pair(0x30000, 0x40000))
    assert rec.offloaded and d.pfe_tunnels_in_use == 2000 and d.pfe_sas_in_use == 4000
    rec = d.install("v2000", Tunnel(), *pair(0x30001, 0x40001))
    assert not rec.offloaded and rec.engine is cpu
    assert rec.placement.reasons == ("PFE SA capacity exceeded (4002 > 4000)",
                                      "PFE tunnel capacity exceeded (2001 > 2000)")
    # freeing one PFE tunnel makes room again
    d.remove("v0")
    assert d.install("v2001", Tunnel(), *pair(0x30002, 0x40002)).offloaded


def test_full_pfe_falls_back_to_next_then_cpu(make_engine: Any, clock: Clock, pair: Any,
                                              log: list[Any]) -> None:
    pfes = [make_engine("pfe", "pfe0", capacity=3), make_engine("pfe", "pfe1", capacity=2)]
    cpu = make_engine("cpu", "cpu")
    d = Distributor(pfes, cpu, license=License(), clock=clock)
    assert d.install("a", Tunnel(), *pair(0x101, 0x201)).location == "FPC 0, PIC 0"
    assert d.install("b", Tunnel(), *pair(0x102, 0x202)).location == "FPC 1, PIC 0"
    del log[:]
    rec = d.install("c", Tunnel(), *pair(0x103, 0x203))
    # pfe0 took the inbound SA, refused the outbound: the inbound is removed (nothing
    # half-installed); pfe1 refused at once; the CPU carries the tunnel.
    assert log == [("add_inbound", "pfe0", 0x203), ("remove", "pfe0", 0x203),
                   ("add_inbound", "cpu", 0x203), ("add_outbound", "cpu", 0x103)]
    assert rec.placement == Placement("cpu", ("no free entry in any PFE SA table",))
    assert len(pfes[0]) == 2


def test_no_pfe_at_all(make_engine: Any, clock: Clock, pair: Any) -> None:
    d = Distributor([], make_engine("cpu"), license=License(), clock=clock)
    assert d.install("a", Tunnel(), *pair(0x101, 0x201)).placement.reasons == (
        "no PFE available",)


def test_hw_offload_disable(make_engine: Any, clock: Clock, pair: Any) -> None:
    pfe, cpu = make_engine("pfe"), make_engine("cpu")
    d = Distributor([pfe], cpu, license=License(), hw_offload_disable=True, clock=clock)
    rec = d.install("a", Tunnel(), *pair(0x101, 0x201))
    assert rec.placement == Placement("cpu", ("hw-offload-disable configured",))
    assert len(pfe) == 0 and len(cpu) == 2


@pytest.mark.parametrize("license, offloaded, reasons", [
    (None, False, ("no valid IPsec offload license",)),
    (License(expires=dt.date(2025, 9, 13)), False,
     ("no valid IPsec offload license (expired 2025-09-13)",)),
    (License(expires=dt.date(2025, 9, 14)), True, ()),
    (License(), True, ()),
])
def test_license_states(make_engine: Any, clock: Clock, pair: Any, license: Any,
                        offloaded: bool, reasons: tuple[str, ...]) -> None:
    d = Distributor([make_engine("pfe")], make_engine("cpu"), license=license, clock=clock)
    rec = d.install("a", Tunnel(), *pair(0x101, 0x201))
    assert rec.offloaded is offloaded and rec.placement.reasons == reasons


def test_license_expires_while_running(make_engine: Any, clock: Clock, pair: Any) -> None:
    d = Distributor([make_engine("pfe")], make_engine("cpu"),
                    license=License(expires=dt.date(2025, 9, 14)), clock=clock)
    assert d.install("a", Tunnel(), *pair(0x101, 0x201)).offloaded
    clock.advance(86400)
    assert not d.install("b", Tunnel(), *pair(0x102, 0x202)).offloaded


def test_rekey_make_before_break(chassis: Any, pair: Any, log: list[Any],
                                 clock: Clock) -> None:
    d, pfes, cpu = chassis
    d.install("vpn-1", Tunnel(), *pair(0x1001, 0x2001))
    del log[:]
    clock.advance(3000)
    new = d.rekey("vpn-1", *pair(0x1002, 0x2002), reason="soft life timer expired")
    # 1. new inbound, 2. new outbound, switch, old outbound removed; old inbound drains
    assert log == [("add_inbound", "pfe0", 0x2002), ("add_outbound", "pfe0", 0x1002),
                   ("remove", "pfe0", 0x1001)]
    rec = d.tunnel("vpn-1")
    assert rec.pairs == [new] and rec.rekeys == 1
    assert pfes[0].spis("inbound") == [0x2001, 0x2002]
    assert pfes[0].spis("outbound") == [0x1002]
    assert d.pfe_sas_in_use == 3
    # the drain time has not passed yet
    clock.advance(5)
    assert d.expire_drained() == []
    clock.advance(5)
    assert d.expire_drained() == [("vpn-1", 0x2001)]
    assert log[-1] == ("remove", "pfe0", 0x2001)
    assert pfes[0].spis() == [0x1002, 0x2002]
    assert [e.split(": ", 1)[1] for e in d.events("vpn-1")][2:] == [
        "IPSEC SA rekey initiated because soft life timer expired (1 times)",
        "IPsec SA rekey succeeds (1 times)",
        "Old inbound IPsec SA 0x00002001 deleted after rekey (1 times)",
    ]


def test_finish_drain_and_repeated_events(chassis: Any, pair: Any) -> None:
    d, pfes, cpu = chassis
    d.install("v", Tunnel(), *pair(0x1001, 0x2001))
    d.rekey("v", *pair(0x1002, 0x2002))
    d.rekey("v", *pair(0x1003, 0x2003))
    assert d.tunnel("v").events[-1].count == 2
    assert d.events("v")[-1].endswith("IPsec SA rekey succeeds (2 times)")
    assert d.finish_drain("v") == [0x2001, 0x2002]
    assert pfes[0].spis() == [0x1003, 0x2003]


def test_rekey_failure_rolls_back(make_engine: Any, clock: Clock, pair: Any,
                                  log: list[Any]) -> None:
    pfe = make_engine("pfe", "pfe0", capacity=3)
    d = Distributor([pfe], make_engine("cpu"), license=License(), clock=clock)
    d.install("v", Tunnel(), *pair(0x1001, 0x2001))
    del log[:]
    with pytest.raises(CapacityError):
        d.rekey("v", *pair(0x1002, 0x2002))
    assert log == [("add_inbound", "pfe0", 0x2002), ("remove", "pfe0", 0x2002)]
    rec = d.tunnel("v")
    assert rec.pairs[0].outbound.spi == 0x1001 and pfe.spis() == [0x1001, 0x2001]
    assert d.events("v")[-1].endswith("IPsec SA rekey fails (1 times)")


def test_failed_rekey_keeps_pending_changes(make_engine: Any, clock: Clock,
                                            pair: Any) -> None:
    pfe = make_engine("pfe", "pfe0", capacity=2)
    d = Distributor([pfe], make_engine("cpu"), license=License(), clock=clock)
    d.install("v", Tunnel(), *pair(0x1001, 0x2001))
    d.set_df_bit("v", "set")
    with pytest.raises(CapacityError):
        d.rekey("v", *pair(0x1002, 0x2002))
    rec = d.tunnel("v")
    assert rec.df_bit == "clear" and rec.pending_df_bit == "set" and rec.rekeys == 0
    pfe.capacity = 4
    assert d.rekey("v", *pair(0x1002, 0x2002)).outbound.df_bit == "set"
    assert rec.df_bit == "set" and rec.pending_df_bit is None


def test_remove_outbound_first(chassis: Any, pair: Any, log: list[Any]) -> None:
    d, pfes, cpu = chassis
    d.install("v", Tunnel(), *pair(0x1001, 0x2001))
    d.rekey("v", *pair(0x1002, 0x2002))
    del log[:]
    rec = d.remove("v", reason="received DEL notification from peer")
    assert log == [("remove", "pfe0", 0x1002), ("remove", "pfe0", 0x2002),
                   ("remove", "pfe0", 0x2001)]
    assert "v" not in d and len(d) == 0 and len(pfes[0]) == 0
    assert rec.event_lines()[-1].endswith(
        "IPSec SA is deleted because received DEL notification from peer (1 times)")
    with pytest.raises(KeyError):
        d.tunnel("v")


def test_remove_child_keeps_the_tunnel(chassis: Any, pair: Any, log: list[Any]) -> None:
    d, pfes, cpu = chassis
    d.install("v", Tunnel(sa_pairs=2), *pair(0x1001, 0x2001))
    d.add_child("v", *pair(0x1002, 0x2002))
    del log[:]
    gone = d.remove_child("v", 0)
    assert gone.inbound.spi == 0x2001
    assert log == [("remove", "cpu", 0x1001), ("remove", "cpu", 0x2001)]
    assert [p.inbound.spi for p in d.tunnel("v").pairs] == [0x2002]
    with pytest.raises(ValueError, match="use remove"):
        d.remove_child("v", 0)


def test_install_twice_is_an_error(chassis: Any, pair: Any) -> None:
    d, _, _ = chassis
    d.install("v", Tunnel(), *pair(0x1001, 0x2001))
    with pytest.raises(ValueError, match="already installed"):
        d.install("v", Tunnel(), *pair(0x1002, 0x2002))


def test_df_bit_pending_on_offloaded_tunnel(chassis: Any, pair: Any) -> None:
    d, pfes, _ = chassis
    d.install("v", Tunnel(), *pair(0x1001, 0x2001))
    assert d.set_df_bit("v", "set") is False
    rec = d.tunnel("v")
    assert rec.df_bit == "clear" and rec.pending_df_bit == "set"
    assert rec.pairs[0].outbound.df_bit == "clear"
    assert pfes[0].sas[rec.pairs[0].outbound_handle][1].df_bit == "clear"
    new = d.rekey("v", *pair(0x1002, 0x2002))
    assert new.outbound.df_bit == "set" and new.inbound.df_bit == "set"
    assert pfes[0].sas[new.outbound_handle][1].df_bit == "set"
    assert rec.df_bit == "set" and rec.pending_df_bit is None
    texts = [e.split(": ", 1)[1] for e in d.events("v")]
    assert "DF-bit change to set pending until next rekey (1 times)" in texts
    assert texts[-1] == "Pending change applied at rekey: DF-bit set (1 times)"


def test_dscp_copy_pending_on_offloaded_tunnel(chassis: Any, pair: Any) -> None:
    d, pfes, _ = chassis
    d.install("v", Tunnel(), *pair(0x1001, 0x2001))
    assert d.set_copy_outer_dscp("v", True) is False
    assert d.tunnel("v").copy_outer_dscp is False
    new = d.rekey("v", *pair(0x1002, 0x2002))
    assert new.inbound.copy_outer_dscp and new.outbound.copy_outer_dscp
    assert d.events("v")[-1].endswith(
        "Pending change applied at rekey: Copy-Outer-DSCP Enabled (1 times)")


def test_pending_change_reverted_before_rekey(chassis: Any, pair: Any) -> None:
    d, _, _ = chassis
    d.install("v", Tunnel(), *pair(0x1001, 0x2001))
    assert d.set_df_bit("v", "copy") is False
    assert d.set_df_bit("v", "clear") is True
    assert d.tunnel("v").pending_df_bit is None
    new = d.rekey("v", *pair(0x1002, 0x2002))
    assert new.outbound.df_bit == "clear"


def test_df_bit_and_dscp_immediate_on_cpu_tunnel(make_engine: Any, clock: Clock,
                                                  pair: Any) -> None:
    cpu = make_engine("cpu", "cpu", with_update=True)
    d = Distributor([make_engine("pfe")], cpu, license=None, clock=clock)
    d.install("v", Tunnel(), *pair(0x1001, 0x2001))
    assert d.set_df_bit("v", "set") is True
    assert d.set_copy_outer_dscp("v", True) is True
    rec = d.tunnel("v")
    assert rec.df_bit == "set" and rec.copy_outer_dscp and rec.pending_df_bit is None
    out_spec = cpu.sas[rec.pairs[0].outbound_handle][1]
    assert out_spec.df_bit == "set" and out_spec.copy_outer_dscp
    assert len(cpu.updates) == 4
    texts = [e.split(": ", 1)[1] for e in d.events("v")]
    assert texts[-2:] == ["DF-bit changed to set (1 times)",
                          "Copy-Outer-DSCP changed to Enabled (1 times)"]


def test_df_bit_rejects_bad_mode(chassis: Any, pair: Any) -> None:
    d, _, _ = chassis
    d.install("v", Tunnel(), *pair(0x1001, 0x2001))
    with pytest.raises(ValueError, match="clear, set, copy"):
        d.set_df_bit("v", "maybe")


def test_inbound_takes_the_tunnel_settings(chassis: Any, pair: Any) -> None:
    d, _, _ = chassis
    out, inb = pair(0x1001, 0x2001)
    import dataclasses
    out = dataclasses.replace(out, df_bit="copy", copy_outer_dscp=True)
    rec = d.install("v", Tunnel(), out, inb)
    assert rec.df_bit == "copy" and rec.copy_outer_dscp
    assert rec.pairs[0].inbound.copy_outer_dscp


def test_add_child_and_counters(make_engine: Any, clock: Clock, pair: Any) -> None:
    cpu = make_engine("cpu", "cpu")
    d = Distributor([make_engine("pfe")], cpu, license=License(), clock=clock)
    d.install("v", Tunnel(sa_pairs=2), *pair(0x1001, 0x2001))
    d.add_child("v", *pair(0x1002, 0x2002))
    assert cpu.spis() == [0x1001, 0x1002, 0x2001, 0x2002]
    counters = d.counters("v")
    assert [(direction, spi) for direction, spi, _ in counters] == [
        ("inbound", 0x2001), ("outbound", 0x1001), ("inbound", 0x2002), ("outbound", 0x1002)]
    assert counters[1][2].packets == d.tunnel("v").pairs[0].outbound_handle
