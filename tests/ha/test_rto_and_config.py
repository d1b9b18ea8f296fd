"""RTO message codec (property tests) and the `chassis high-availability` statements."""
from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inline_ipsec.config import ConfigurationErrors, load_config
from inline_ipsec.ha.rto import (MAX_MESSAGE, RtoError, RtoMessage, RtoType, decode, encode,
                                 spec_from_json, spec_to_json)
from inline_ipsec.ha.srg import PeerView, SrgMachine, SrgState
from inline_ipsec.sa import Lifetime, SaSpec

from ha_helpers import node_config


def test_round_trip_of_every_type() -> None:
    spec = SaSpec(spi=0x1234, cipher="aes-cbc-256", key=os.urandom(32),
                  integrity="hmac-sha256-128", integrity_key=os.urandom(32),
                  tunnel_src="192.0.2.10", tunnel_dst="198.51.100.1", esn=True,
                  lifetime=Lifetime(soft_seconds=3000.0, hard_seconds=3600.0))
    bodies = {
        RtoType.HEARTBEAT: {"srgs": [[1, "ACTIVE", 200, 1, 0, 0, 1]]},
        RtoType.SA_ADD: {"vpn": "v", "srg": 1, "index": 0, "sa_type": "dynamic",
                         "out": spec_to_json(spec), "in": spec_to_json(spec), "lts": [],
                         "rts": ["10.2.0.0/24"], "seq": 1 << 20},
        RtoType.SA_DELETE: {"vpn": "v"},
        RtoType.SEQ_RESERVE: {"spis": [[0x1234, 99]]},
        RtoType.SEQ_ACK: {"spis": [[0x1234, 99]]},
        RtoType.REPLAY: {"spis": [[0x1234, 7]]},
        RtoType.IKE_SA: {"id": "00" * 8, "part": 0, "parts": 1, "data": "{}"},
        RtoType.IKE_DELETE: {"id": "00" * 8},
        RtoType.SYNC_DONE: {},
    }
    assert set(bodies) == set(RtoType)
    for kind, body in bodies.items():
        msg = RtoMessage(kind, 2, 77, body)
        data = encode(msg)
        assert len(data) <= MAX_MESSAGE
        assert decode(data) == msg
    again = spec_from_json(spec_to_json(spec))
    assert again == spec


@pytest.mark.parametrize("data, why", [
    (b"", "truncated"),
    (b"MNHB" + bytes(12), "magic"),
    (b"MNHA\x02" + bytes(11), "version"),
    (b"MNHA\x01\x63\x01\x00" + bytes(8), "unknown RTO type"),
    (b"MNHA\x01\x01\x01\x00\x00\x00\x00\x01\x00\x00\x00\x05{}", "length"),
    (b"MNHA\x01\x01\x01\x00\x00\x00\x00\x01\x00\x00\x00\x02[]", "not an object"),
    (b"MNHA\x01\x01\x01\x00\x00\x00\x00\x01\x00\x00\x00\x02{}", "srgs"),
    (b"MNHA\x01\x04\x01\x00\x00\x00\x00\x01\x00\x00\x00\x11{\"spis\":[[1,-2]]}", "bad entry"),
    (b"MNHA\x01\x03\x01\x00\x00\x00\x00\x01\x00\x00\x00\x03\xff\xfe\xfd", "not JSON"),
])
def test_malformed_messages_are_typed_errors(data: bytes, why: str) -> None:
    with pytest.raises(RtoError, match=why):
        decode(data)


def test_an_sa_spec_that_is_not_an_sa_is_rejected() -> None:
    with pytest.raises(RtoError, match="not valid"):
        spec_from_json({"spi": 5, "cipher": "aes-gcm-128", "key": "00" * 20,
                        "tunnel_src": "192.0.2.1", "tunnel_dst": "192.0.2.2"})
    with pytest.raises(RtoError, match="not valid"):
        spec_from_json({"spi": 4096, "cipher": "aes-gcm-128", "key": "zz",
                        "tunnel_src": "192.0.2.1", "tunnel_dst": "192.0.2.2"})


def test_oversized_messages_are_refused_by_the_encoder() -> None:
    with pytest.raises(RtoError, match="split"):
        encode(RtoMessage(RtoType.SEQ_RESERVE, 1, 1, {"spis": [[i, i] for i in range(400)]}))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_decode_never_raises_anything_but_rto_error(data: bytes) -> None:
    try:
        msg = decode(data)
    except RtoError:
        return
    assert encode(msg) == data or msg.body is not None


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 15), st.binary(min_size=1, max_size=40))
def test_corrupted_valid_messages_are_typed_errors_or_valid(pos: int, junk: bytes) -> None:
    data = bytearray(encode(RtoMessage(RtoType.HEARTBEAT, 1, 5,
                                       {"srgs": [[1, "BACKUP", 100, 1, 0, 0, 1]]})))
    data[pos:pos + len(junk)] = junk
    try:
        decode(bytes(data))
    except RtoError:
        pass


# -- the SRG machine ---------------------------------------------------------------------------

def test_election_ranks_priority_then_lower_node_id() -> None:
    a = SrgMachine(1, node_id=1, priority=100, preemption=False)
    t = a.peer_heard(2, PeerView(SrgState.HOLD, 100, True))
    assert t is not None and a.state is SrgState.ACTIVE     # tie: node 1 wins
    b = SrgMachine(1, node_id=2, priority=100, preemption=False)
    b.peer_heard(1, PeerView(SrgState.HOLD, 100, True))
    assert b.state is SrgState.BACKUP


def test_ineligible_never_becomes_active() -> None:
    m = SrgMachine(1, node_id=1, priority=250, preemption=True)
    m.set_health(False, "monitored interface ge-0/0/1 down")
    assert m.state is SrgState.INELIGIBLE
    m.peer_lost(probe_answered_by_other=False)
    assert m.state is SrgState.INELIGIBLE
    m.peer_heard(2, PeerView(SrgState.BACKUP, 1, True))
    assert m.state is SrgState.INELIGIBLE


def test_preemption_waits_for_cold_sync() -> None:
    m = SrgMachine(1, node_id=1, priority=200, preemption=True)
    m.peer_heard(2, PeerView(SrgState.ACTIVE, 100, True))
    assert m.state is SrgState.BACKUP and not m.wants_preempt
    m.ready = True
    assert m.wants_preempt


# -- configuration -----------------------------------------------------------------------------

def test_configuration_model() -> None:
    cfg = load_config(node_config(1, preemption=True))
    ha = cfg.high_availability
    assert ha is not None and ha.local_id == 1 and ha.local_ip == "10.22.0.1"
    peer = ha.peer
    assert peer is not None and peer.peer_ip == "10.22.0.2" and peer.vpn_profile == "ICL-VPN"
    assert peer.liveness.timeout == pytest.approx(0.3)
    srg = ha.srgs[1]
    assert srg.activeness_priority == 200 and srg.preemption
    assert srg.addresses == ("192.0.2.10",)
    assert srg.monitor_interfaces == ("ge-0/0/1",)
    assert ha.srg_of_address("192.0.2.10") == 1 and ha.srg_of_address("192.0.2.11") is None


@pytest.mark.parametrize("extra, message", [
    ("set chassis high-availability peer-id 2 vpn-profile NOPE\n", "is not a 'security ipsec"),
    ("set security ipsec vpn plain manual spi 3000\n"
     "set chassis high-availability peer-id 2 vpn-profile plain\n", "lacks 'ha-link-enc"),
    ("set chassis high-availability services-redundancy-group 0 preemption\n",
     "active on both nodes"),
    ("set chassis high-availability services-redundancy-group 2 peer-id 2\n", "no 'virtual-ip'"),
    ("set chassis high-availability services-redundancy-group 1 peer-id 1\n",
     "not a configured peer-id"),
])
def test_configuration_errors_name_the_line(extra: str, message: str) -> None:
    text = node_config(1, extra=extra)
    with pytest.raises(ConfigurationErrors) as info:
        load_config(text)
    assert any(message in str(i) for i in info.value.errors), info.value.errors


@pytest.mark.parametrize("line, token", [
    ("set chassis high-availability local-id 3", "3"),
    ("set chassis high-availability peer-id 2 liveness-detection minimum-interval 5", "5"),
    ("set chassis high-availability services-redundancy-group 1 activeness-priority 255",
     "255"),
    ("set chassis high-availability services-redundancy-group 1 virtual-ip 1 ip 10.0.0.1",
     "10.0.0.1"),
    ("set chassis high-availability services-redundancy-group 1 deployment-type cloud",
     "cloud"),
])
def test_syntax_errors(line: str, token: str) -> None:
    with pytest.raises(ConfigurationErrors) as info:
        load_config(line + "\n")
    assert info.value.errors[0].token == token
