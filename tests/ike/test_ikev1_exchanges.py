"""Two of our IKEv1 sessions in memory: Main and Aggressive Mode with every authentication
method and PFS choice, the Phase 1 algorithms Junos offers, ESP/AH children, failures,
retransmission, rekey, delete, RESPONDER-LIFETIME, the commit bit, NAT-T, DPD and IKE
fragmentation (RFC 2408, RFC 2409, RFC 3947, RFC 3706)."""
from __future__ import annotations

import itertools

import pytest

from ikev1_helpers import I_NET, NAT_ADDR_NATT, R_NET, configs, pair, Pair
from inline_ipsec.ike import (ChildConfig, ChildSaDown, ChildSaRekeyed, ChildSaUp, IkeSaDown,
                              IkeSaUp)
from inline_ipsec.ike.v1.constants import NotifyType
from inline_ipsec.ike.v1.isakmp import decode
from inline_ipsec.ike.v1.proposals import Phase1Proposal


def _children_match(p: Pair) -> tuple:
    """Both ends derived the same keys for the same SPIs, mirrored (RFC 2409 §5.5)."""
    (ci,) = p.of("i", ChildSaUp)
    (cr,) = p.of("r", ChildSaUp)
    a, b = ci.child, cr.child
    assert (a.spi_in, a.spi_out) == (b.spi_out, b.spi_in)
    assert a.key_in == b.key_out and a.key_out == b.key_in
    assert (a.key_in, a.integrity_key_in) != (a.key_out, a.integrity_key_out)
    assert a.integrity_key_in == b.integrity_key_out
    assert a.integrity_key_out == b.integrity_key_in
    assert a.cipher == b.cipher and a.ike_version == b.ike_version == 1
    assert a.initiator and not b.initiator
    return a, b


MODES = ["main", "aggressive"]
AUTHS = ["psk", "rsa", "ecdsa256", "ecdsa384"]
PFS = {"none": "aes128gcm16", "modp2048": "aes128gcm16-modp2048",
       "ecp256": "aes256-sha256-ecp256"}


@pytest.mark.parametrize("mode, auth, pfs", list(itertools.product(MODES, AUTHS, PFS)))
def test_every_mode_authentication_and_pfs(mode, auth, pfs):
    ike = "aes256-sha384-ecp384" if auth == "ecdsa384" else "aes128-sha256-ecp256"
    # (fragment_size: certificate messages whole, so the message count below holds)
    p = pair(auth, ike=ike, esp=(PFS[pfs],), mode=mode, fragment_size=4000).connect()
    assert p.i.state == p.r.state == "established"
    (ui,), (ur,) = p.of("i", IkeSaUp), p.of("r", IkeSaUp)
    assert ui.version == ur.version == 1
    assert ui.exchange_mode == ur.exchange_mode == mode.capitalize()
    assert (ui.spi_i, ui.spi_r) == (ur.spi_i, ur.spi_r) and ui.initiator and not ur.initiator
    assert (ui.remote_id, ur.remote_id) == ("r.example", "i.example")
    a, _ = _children_match(p)
    assert a.cipher == {"none": "aes-gcm-128", "modp2048": "aes-gcm-128",
                        "ecp256": "aes-cbc-256"}[pfs]
    assert [str(t) for t in a.local_ts] == [I_NET] and [str(t) for t in a.remote_ts] == [R_NET]
    assert not p.i.drops and not p.r.drops and not p.i.errors and not p.r.errors
    # the exchange on the wire: 6 (Main) or 3 (Aggressive) Phase 1 messages, then 3 of Quick
    # Mode; Phase 1 is message ID 0, the Quick Mode another one, all encrypted after the keys
    kinds = [h for h in (decode(d[4:] if d[:4] == bytes(4) else d).header for _, d, _ in p.log)
             if h.next_payload != 132]     # (fragments of large certificate messages aside)
    assert [h.exchange for h in kinds] == [2 if mode == "main" else 4] * \
        (6 if mode == "main" else 3) + [32] * 3
    assert [h.encrypted for h in kinds][-3:] == [True] * 3
    assert len({h.message_id for h in kinds[-3:]}) == 1 and kinds[-1].message_id != 0


@pytest.mark.parametrize("group", [2, 5, 14, 15, 16, 19, 20, 21, 24])
def test_phase1_groups(group):
    proposal = Phase1Proposal("pre-shared-keys", "aes-128-cbc", "sha-256", group)
    p = pair(i_proposals=[proposal], r_proposals=[proposal]).connect()
    assert p.of("i", IkeSaUp) and p.i.sa.suite.group == group
    assert len(p.i.sa.g_xy) == {2: 128, 5: 192, 14: 256, 15: 384, 16: 512, 19: 32, 20: 48,
                                21: 66, 24: 256}[group]
    _children_match(p)


@pytest.mark.parametrize("encryption, hash_", list(itertools.product(
    ["aes-128-cbc", "aes-192-cbc", "aes-256-cbc", "3des-cbc"], ["sha1", "sha-256", "sha-384"])))
def test_phase1_ciphers_and_hashes(encryption, hash_):
    proposal = Phase1Proposal("pre-shared-keys", encryption, hash_, 19, 3600)
    p = pair(i_proposals=[proposal], r_proposals=[proposal]).connect()
    suite = p.i.sa.suite
    assert suite.cipher == {"aes-128-cbc": "aes-cbc-128", "aes-192-cbc": "aes-cbc-192",
                            "aes-256-cbc": "aes-cbc-256", "3des-cbc": "3des-cbc"}[encryption]
    assert suite.lifetime_seconds == 3600
    _children_match(p)


def test_responder_picks_the_first_offered_transform_it_allows():
    offered = [Phase1Proposal("pre-shared-keys", "3des-cbc", "sha1", 2),
               Phase1Proposal("pre-shared-keys", "aes-256-cbc", "sha-256", 14),
               Phase1Proposal("pre-shared-keys", "aes-128-cbc", "sha-256", 19)]
    p = pair(i_proposals=offered, r_proposals=offered[1:]).connect()
    assert p.i.sa.suite.name == p.r.sa.suite.name == "aes256-sha256-modp2048"


@pytest.mark.parametrize("esp, cipher, integrity, protocol", [
    ("aes128gcm16", "aes-gcm-128", None, "esp"), ("aes192gcm16", "aes-gcm-192", None, "esp"),
    ("aes256gcm16", "aes-gcm-256", None, "esp"),
    ("aes256-sha256", "aes-cbc-256", "hmac-sha256-128", "esp"),
    ("aes128-sha1", "aes-cbc-128", "hmac-sha1-96", "esp"),
    ("3des-sha1", "3des-cbc", "hmac-sha1-96", "esp"),
    ("aes256-sha512", "aes-cbc-256", "hmac-sha512-256", "esp"),
    ("sha256", "null", "hmac-sha256-128", "ah"),
])
def test_child_ciphers(esp, cipher, integrity, protocol):
    i_cfg, r_cfg = configs(esp=(esp,))
    for cfg in (i_cfg, r_cfg):
        cfg.children[0].protocol = protocol
    p = Pair.make(i_cfg, r_cfg).connect()
    a, _ = _children_match(p)
    assert (a.cipher, a.integrity, a.protocol) == (cipher, integrity, protocol)
    out, inb = a.to_sa_specs("192.0.2.1", "198.51.100.1")    # valid for the data plane
    assert out.spi == a.spi_out and inb.spi == a.spi_in


# --- failures ------------------------------------------------------------------------------

def test_no_common_phase1_proposal():
    p = pair(i_proposals=[Phase1Proposal(dh_group=14)], r_proposals=[Phase1Proposal(
        dh_group=19)]).connect()
    (di,), (dr,) = p.of("i", IkeSaDown), p.of("r", IkeSaDown)
    assert di.error.notify_hint == dr.error.notify_hint == NotifyType.NO_PROPOSAL_CHOSEN
    assert p.i.state == p.r.state == "closed"


def test_no_common_quick_mode_proposal_keeps_phase1():
    p = pair(i_children=[ChildConfig(proposals=["aes128gcm16"], local_ts=[I_NET],
                                     remote_ts=[R_NET])],
             r_children=[ChildConfig(proposals=["aes256-sha256"], local_ts=[R_NET],
                                     remote_ts=[I_NET])]).connect()
    assert p.i.state == p.r.state == "established"
    assert not p.of("i", ChildSaUp) and not p.of("r", ChildSaUp)
    assert p.i.errors[-1].notify_hint == NotifyType.NO_PROPOSAL_CHOSEN
    assert not p.i.exchanges and not p.r.exchanges


def test_proxy_ids_outside_the_responders_policy():
    p = pair(i_children=[ChildConfig(local_ts=["10.9.0.0/24"], remote_ts=[R_NET])]).connect()
    assert p.i.errors[-1].notify_hint == NotifyType.INVALID_ID_INFORMATION
    assert not p.of("r", ChildSaUp)


@pytest.mark.parametrize("mode", MODES)
def test_wrong_pre_shared_key(mode):
    i_cfg, r_cfg = configs(mode=mode)
    r_cfg.psk = b"something else"
    p = Pair.make(i_cfg, r_cfg).connect()
    p.advance(120)
    assert p.i.state == p.r.state == "closed"
    assert not p.of("i", IkeSaUp) and not p.of("r", IkeSaUp)
    assert p.of("i", IkeSaDown) and p.of("r", IkeSaDown)
    if mode == "aggressive":    # the initiator checks HASH_R itself
        assert p.of("i", IkeSaDown)[0].error.notify_hint == NotifyType.AUTHENTICATION_FAILED


def test_wrong_identity():
    from inline_ipsec.ike import Identity
    p = pair(r_remote_id=Identity.parse("@someone.else")).connect()
    (dr,) = p.of("r", IkeSaDown)
    assert dr.error.notify_hint == NotifyType.INVALID_ID_INFORMATION


def test_certificate_of_another_ca():
    from ikev1_helpers import pki
    i_cfg, r_cfg = configs("rsa")
    r_cfg.ca_certificates = [pki("ecdsa256")[0]]
    p = Pair.make(i_cfg, r_cfg).connect()
    (dr,) = p.of("r", IkeSaDown)
    assert dr.error.notify_hint == NotifyType.AUTHENTICATION_FAILED
    assert "trusted CA" in str(dr.error)


def test_aggressive_mode_is_not_accepted_by_a_main_mode_responder():
    p = pair(i_mode="aggressive", r_mode="main").connect()
    assert p.r.drops.get("unexpected") and p.r.state in ("created", "closed")
    p.advance(60)
    assert p.i.state == "closed"
    assert p.of("i", IkeSaDown)[0].reason in ("retransmit timeout", "half-open timeout")


# --- retransmission ------------------------------------------------------------------------

def _drop_nth(direction: str, n: int):
    seen = {"n": 0}

    def drop(d: str, data: bytes) -> bool:
        if d != direction:
            return False
        seen["n"] += 1
        return seen["n"] == n
    return drop


@pytest.mark.parametrize("mode, direction, n", [
    ("main", "i->r", 1), ("main", "r->i", 1), ("main", "r->i", 2), ("main", "r->i", 3),
    ("main", "i->r", 3), ("main", "r->i", 4), ("main", "i->r", 5),
    ("aggressive", "r->i", 1), ("aggressive", "i->r", 2), ("aggressive", "i->r", 3),
])
def test_a_lost_message_is_retransmitted(mode, direction, n):
    """Main Mode messages 1-6, Aggressive Mode 1-3 and Quick Mode 1-3 each lost once."""
    p = pair(mode=mode)
    p.connect(_drop_nth(direction, n))
    p.advance(30)
    assert p.i.state == p.r.state == "established"
    _children_match(p)


def test_retransmissions_back_off_then_give_up():
    i_cfg, r_cfg = configs(retransmit_timeout=1.0, retransmit_base=2.0, retransmit_tries=3)
    p = Pair.make(i_cfg, r_cfg)
    p.connect(lambda d, data: True)
    p.advance(30, drop=lambda d, data: True)
    assert p.i.state == "closed" and p.of("i", IkeSaDown)[0].reason == "retransmit timeout"
    sent = [t for d, t in p.times if d == "i->r"]
    assert sent == [0.0, 1.0, 3.0, 7.0]     # timeout * base**n: 1, 2, 4 s apart


# --- rekey, delete, close ------------------------------------------------------------------

@pytest.mark.parametrize("who", ["i", "r"])
def test_quick_mode_rekey_make_before_break(who):
    p = pair(esp=("aes128gcm16-ecp256",)).connect()
    a, b = _children_match(p)
    side = p.i if who == "i" else p.r
    old = a if who == "i" else b
    side.rekey_child(old.spi_in, p.now)
    p.run()
    (ri,), (rr,) = p.of("i", ChildSaRekeyed), p.of("r", ChildSaRekeyed)
    assert (ri.old_spi_in, ri.old_spi_out) == (a.spi_in, a.spi_out)
    assert (rr.old_spi_in, rr.old_spi_out) == (b.spi_in, b.spi_out)
    assert (ri.new.spi_in, ri.new.spi_out) == (rr.new.spi_out, rr.new.spi_in)
    assert ri.new.key_in == rr.new.key_out and ri.new.key_in != a.key_in
    # the rekey's initiator deletes the old pair; the peer removes it on the Delete
    (di,), (dr,) = p.of("i", ChildSaDown), p.of("r", ChildSaDown)
    assert {di.spi_in, dr.spi_in} == {a.spi_in, b.spi_in}
    assert len(p.i.children) == len(p.r.children) == 1


def test_rekey_at_the_soft_lifetime_by_the_initiator():
    child = lambda lo, hi: ChildConfig(name="c", local_ts=[lo], remote_ts=[hi],  # noqa: E731
                                       lifetime_seconds=1000, rekey_seconds=800)
    p = pair(i_children=[child(I_NET, R_NET)], r_children=[child(R_NET, I_NET)]).connect()
    a, _ = _children_match(p)
    assert a.lifetime.hard_seconds == 1000 and a.lifetime.soft_seconds == 800
    p.advance(790)
    assert not p.of("i", ChildSaRekeyed)
    p.advance(20)
    (ri,) = p.of("i", ChildSaRekeyed)
    assert ri.new.initiator and p.of("r", ChildSaRekeyed)


def test_hard_lifetime_deletes_the_pair():
    child = lambda lo, hi: ChildConfig(name="c", local_ts=[lo], remote_ts=[hi],  # noqa: E731
                                       lifetime_seconds=600)
    p = pair(i_children=[child(I_NET, R_NET)], r_children=[child(R_NET, I_NET)]).connect()
    for s in (p.i, p.r):
        for c in s.children.values():
            c.rekey_at = None          # never rekey: let it expire
    p.advance(610)
    assert p.of("i", ChildSaDown) and p.of("r", ChildSaDown)
    assert not p.i.children and not p.r.children and p.i.state == "established"


@pytest.mark.parametrize("who", ["i", "r"])
def test_delete_from_each_side(who):
    p = pair().connect()
    a, b = _children_match(p)
    side, mine = (p.i, a) if who == "i" else (p.r, b)
    side.delete_child(mine.spi_in, p.now)
    p.run()
    assert p.of("i", ChildSaDown)[0].spi_in == a.spi_in
    assert p.of("r", ChildSaDown)[0].spi_in == b.spi_in
    assert p.of("r" if who == "i" else "i", ChildSaDown)[0].reason == "deleted by peer"
    assert p.i.state == p.r.state == "established"


@pytest.mark.parametrize("who", ["i", "r"])
def test_close_deletes_everything(who):
    p = pair().connect()
    a, b = _children_match(p)
    closer, peer = (p.i, p.r) if who == "i" else (p.r, p.i)
    mine, theirs = (a, b) if who == "i" else (b, a)
    closer.close(p.now)
    p.run()
    assert p.i.state == p.r.state == "closed"
    c, q = (p.of("i", IkeSaDown), p.of("r", IkeSaDown)) if who == "i" else \
        (p.of("r", IkeSaDown), p.of("i", IkeSaDown))
    assert c[0].reason == "closed locally" and c[0].children == [(mine.spi_in, mine.spi_out)]
    # the peer got the Delete of the IPsec SAs, then of the ISAKMP SA (RFC 2408 §3.15)
    (gone,) = p.of("r" if who == "i" else "i", ChildSaDown)
    assert (gone.spi_in, gone.reason) == (theirs.spi_in, "deleted by peer")
    assert q[0].reason == "deleted by peer" and q[0].children == []


def test_second_child_and_the_limit():
    more = ChildConfig(name="d", local_ts=["10.1.1.0/24"], remote_ts=["10.2.1.0/24"])
    back = ChildConfig(name="d", local_ts=["10.2.1.0/24"], remote_ts=["10.1.1.0/24"])
    i_cfg, r_cfg = configs(r_max_children=1)
    r_cfg.children = list(r_cfg.children) + [back]
    p = Pair.make(i_cfg, r_cfg).connect()
    p.i.create_child(more, p.now)
    p.run()
    assert len(p.of("i", ChildSaUp)) == 1 and len(p.r.children) == 1
    assert p.i.errors[-1].notify_hint == NotifyType.NO_PROPOSAL_CHOSEN
    p.r.config.max_children = 5
    p.i.create_child(more, p.now)
    p.run()
    names = sorted(e.child.name for e in p.of("r", ChildSaUp))
    assert names == ["c", "d"]


# --- lifetimes -----------------------------------------------------------------------------

def test_responder_lifetime_notification():
    """The responder's shorter lifetime (seconds and kilobytes) wins and is announced with
    RESPONDER-LIFETIME (RFC 2407 §4.6.3.1)."""
    p = pair(i_children=[ChildConfig(name="c", local_ts=[I_NET], remote_ts=[R_NET],
                                     lifetime_seconds=28800)],
             r_children=[ChildConfig(name="c", local_ts=[R_NET], remote_ts=[I_NET],
                                     lifetime_seconds=1800, lifetime_kilobytes=50000)]
             ).connect()
    a, b = _children_match(p)
    assert a.lifetime.hard_seconds == b.lifetime.hard_seconds == 1800
    assert a.lifetime.hard_kilobytes == b.lifetime.hard_kilobytes == 50000
    assert a.lifetime.soft_kilobytes == 45000


def test_kilobyte_lifetime_proposed_by_the_initiator():
    p = pair(i_children=[ChildConfig(name="c", local_ts=[I_NET], remote_ts=[R_NET],
                                     lifetime_kilobytes=4608000)]).connect()
    a, b = _children_match(p)
    assert a.lifetime.hard_kilobytes == b.lifetime.hard_kilobytes == 4608000


# --- commit bit ----------------------------------------------------------------------------

def test_commit_bit():
    """The responder sets the commit bit; the initiator reports the SA pair only when the
    CONNECTED notification arrives (RFC 2408 §3.1)."""
    p = pair(r_commit_bit=True)
    p.connect(drop=lambda d, data: d == "r->i" and _is_informational(data))
    assert not p.of("i", ChildSaUp) and p.of("r", ChildSaUp) and p.i.commit_waits
    q = pair(r_commit_bit=True).connect()
    _children_match(q)
    assert not q.i.commit_waits
    assert any(_is_informational(d) for who, d, _ in q.log if who == "r->i")


def _is_informational(data: bytes) -> bool:
    raw = data[4:] if data[:4] == bytes(4) else data
    return len(raw) > 18 and raw[18] == 5


def test_commit_bit_without_connected_installs_after_waiting():
    p = pair(r_commit_bit=True)
    p.connect(drop=lambda d, data: d == "r->i" and _is_informational(data))
    assert not p.of("i", ChildSaUp)
    p.advance(30, drop=lambda d, data: d == "r->i" and _is_informational(data))
    assert p.of("i", ChildSaUp) and p.i.drops.get("commit-timeout") == 1


# --- NAT-T ---------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_nat_traversal(mode):
    p = pair(nat=True, mode=mode).connect()
    (ui,), (ur,) = p.of("i", IkeSaUp), p.of("r", IkeSaUp)
    assert ui.local_nat and not ui.remote_nat and ur.remote_nat and not ur.local_nat
    assert p.i.natt and p.r.natt and p.r.remote_addr == NAT_ADDR_NATT
    a, b = _children_match(p)
    assert a.udp_encap and b.udp_encap and (b.remote_port, b.local_port) == (40001, 4500)
    # after the NAT-D exchange every message goes to 4500 with the non-ESP marker
    phase1 = 6 if mode == "main" else 3
    floated = [d[:4] == bytes(4) for _, d, _ in p.log]
    assert not floated[0] and all(floated[phase1 - (2 if mode == "main" else 1):])


def test_no_nat_no_encapsulation():
    p = pair().connect()
    a, _ = _children_match(p)
    assert not a.udp_encap and not p.i.natt and not p.of("i", IkeSaUp)[0].local_nat


def test_forced_encapsulation():
    p = pair(i_force_encap=True).connect()
    (ur,) = p.of("r", IkeSaUp)
    assert ur.remote_nat and p.i.natt
    assert _children_match(p)[0].udp_encap


# --- DPD -----------------------------------------------------------------------------------

def test_dpd_probes_idle_peers_and_declares_the_dead_one():
    """Junos: an R-U-THERE each interval without traffic; dead after `threshold` probes in a
    row are unanswered, about interval x (threshold + 1) after the peer went quiet."""
    p = pair(i_dpd_interval=10.0, i_dpd_threshold=3).connect()
    p.advance(35)                   # the peer answers: alive
    assert p.i.state == "established" and p.i.dpd_outstanding == 0
    acks = sum(1 for who, d, _ in p.log if who == "r->i" and _is_informational(d))
    assert acks >= 3
    t_quiet = p.now
    while p.i.state == "established" and p.now < t_quiet + 100:
        p.advance(1, drop=lambda d, data: d == "r->i")
    (down,) = p.of("i", IkeSaDown)
    assert down.reason == "dead peer" and len(down.children) == 1
    assert 10 * 3 <= p.now - t_quiet <= 10 * (3 + 1) + 1
    probes = [d for who, d, _ in p.log if who == "i->r" and _is_informational(d)]
    assert len(probes) >= 3 + 3


def test_dpd_always_send():
    p = pair(i_dpd_interval=5.0, i_dpd_always_send=True).connect()
    before = p.i.dpd_seq
    p.advance(26)
    assert (p.i.dpd_seq - before) % 2 ** 32 >= 5 and p.i.state == "established"


# --- IKE fragmentation ---------------------------------------------------------------------

def test_fragmented_certificates():
    p = pair("rsa", fragment_size=400).connect()
    assert p.i.state == p.r.state == "established"
    frags = [d for _, d, _ in p.log if decode(d[4:] if d[:4] == bytes(4) else d)
             .header.next_payload == 132]
    assert len(frags) >= 6 and all(len(d) <= 404 for d in frags)
    _children_match(p)


def test_no_fragments_to_a_peer_that_did_not_announce_them():
    p = pair("rsa", i_fragment_size=400, r_fragmentation=False).connect()
    assert p.i.state == "established"
    assert all(decode(d[4:] if d[:4] == bytes(4) else d).header.next_payload != 132
               for _, d, _ in p.log)


def test_no_dpd_towards_a_peer_without_the_vendor_id():
    p = pair(i_dpd_interval=5.0).connect()
    p.i.peer_dpd = False            # as if the peer had not sent the RFC 3706 vendor ID
    seq = p.i.dpd_seq
    p.advance(30)
    assert p.i.dpd_seq == seq and p.i.drops["dpd-unsupported-by-peer"] == 1
    assert p.i.state == "established"
