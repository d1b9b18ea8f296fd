"""One engine contract (`inline_ipsec.engine.Engine`), implemented completely by both engines:
nothing above them probes for an optional method."""
from __future__ import annotations

import dataclasses
import inspect

import pytest

from inline_ipsec import Burst, CpuEngine, Pfe, SaSpec
from inline_ipsec.engine import Engine, SaEvent
from inline_ipsec.errors import UnsupportedSaError

def spec(**kw) -> SaSpec:
    return SaSpec(spi=0x700, cipher="aes-gcm-128", key=bytes(range(20)),
                  tunnel_src="192.0.2.1", tunnel_dst="198.51.100.1", **kw)


@pytest.mark.parametrize("cls", [Pfe, CpuEngine])
def test_every_member_of_the_contract_is_implemented(cls) -> None:
    names = set(Engine.__annotations__) | {
        n for n, v in vars(Engine).items() if inspect.isfunction(v) and not n.startswith("_")}
    assert {"add_outbound", "update", "remove", "sequence", "next_event", "counters"} <= names
    for name in names:
        assert hasattr(cls(), name), f"{cls.__name__}.{name}"
    assert isinstance(cls(), Engine)


@pytest.mark.parametrize("cls", [Pfe, CpuEngine])
def test_update_keeps_the_sequence_number(cls) -> None:
    eng = cls()
    h = eng.add_outbound(spec())
    inner = bytes([0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 10, 1, 0, 1, 10, 2, 0, 1]) + bytes(8)
    assert not eng.encrypt(h, inner)[6] & 0x40
    eng.update(h, spec(df_bit="set"))
    wire = eng.encrypt(h, inner)
    assert wire[6] & 0x40 and eng.sequence(h) == 2 and eng.spec(h).df_bit == "set"


def test_the_pfe_refuses_other_changes_in_place() -> None:
    pfe = Pfe()
    h = pfe.add_outbound(spec())
    with pytest.raises(UnsupportedSaError):
        pfe.update(h, dataclasses.replace(spec(), key=bytes(20)))


def test_the_pfe_reports_an_exhausted_sequence_space_once() -> None:
    pfe = Pfe()
    h = pfe.add_outbound(spec())
    assert pfe.next_event() is None
    pfe.set_sequence(h, 0xFFFFFFFF)
    inner = bytes([0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 10, 1, 0, 1, 10, 2, 0, 1]) + bytes(8)
    burst = Burst.from_packets([inner], h)
    pfe.encrypt_burst(burst)
    ev = pfe.next_event()
    assert ev == SaEvent("rekey-due", h, 0x700, "outbound", "sequence", 0.0)
    assert pfe.next_event() is None
