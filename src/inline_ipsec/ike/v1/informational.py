"""Informational exchanges (RFC 2408 §4.8, RFC 2409 §5.7): notifications, Delete, DPD
(RFC 3706) and the commit bit's CONNECTED.

    HDR*, HASH(1), N/D        HASH(1) = prf(SKEYID_a, M-ID | N/D)

One message, never answered (R-U-THERE's ACK is an Informational of its own), with a fresh
message ID and IV (hash(last Phase 1 block | M-ID), RFC 2409 Appendix B). Before the ISAKMP SA
has keys, notifications go unprotected; such an unprotected error during Phase 1 ends our
Phase 1 (RFC 2408 §5: the peer refused it), anything unprotected afterwards is ignored.

Delete: IPsec SAs by the SPIs their sender receives with (our inbound SPIs out, the peer's
inbound = our outbound SPIs in), the ISAKMP SA by both cookies (RFC 2408 §3.15).

DPD (RFC 3706 §5) with the Junos semantics, towards a peer that sent the DPD vendor ID
(§4): with `dpd_interval` set, a probe is due each
interval in which nothing was heard from the peer (every interval with `dpd_always_send`);
after `dpd_threshold` probes in a row without an answer the peer is dead and the ISAKMP SA
and its IPsec SAs are cleared (`IkeSaDown(reason="dead peer")`). R-U-THERE carries the
cookies as SPI and a sequence number; the ACK must echo the last one sent.
"""
from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, Sequence

from ..errors import RemoteIkeError
from ..events import ChildSaDown
from ..states import IkeV1SaState
from .constants import ExchangeType, NotifyType, ProtocolId, notify_name
from .exchange import Exchange
from .isakmp import (DeletePayload, HashPayload, IsakmpMessage, NotifyPayload, Payload,
                     encode_chain)
from .keymat import qm_hash1

if TYPE_CHECKING:  # pragma: no cover
    from .child import ChildSa
    from .session import Addr, IkeV1Session


class _Info(Exchange):
    exchange_type = ExchangeType.INFORMATIONAL


def send_informational(session: "IkeV1Session", payloads: list[Payload]) -> None:
    """Send N/D payloads in an Informational exchange: protected (HASH(1), encrypted) once
    the ISAKMP SA has keys, in the clear before."""
    s = session
    mid = s.new_mid()
    info = _Info(s, mid, True)
    sa = s.sa
    if sa.keys is None or sa.cipher is None:
        s.send_once(s.message(info, ExchangeType.INFORMATIONAL, payloads, False))
        return
    info.chain = s.phase2_chain(mid)
    h = qm_hash1(sa.hash_name, sa.keys.skeyid_a, mid, encode_chain(payloads))
    s.send_once(s.message(info, ExchangeType.INFORMATIONAL, [HashPayload(h), *payloads],
                          True))


def send_notify(session: "IkeV1Session", notify_type: int, protocol: int = ProtocolId.ISAKMP,
                spi: bytes = b"", data: bytes = b"") -> None:
    """A notification, e.g. the error that made us refuse a proposal (RFC 2408 §3.14)."""
    if protocol == ProtocolId.ISAKMP and not spi:
        spi = session.sa.cky_i + session.sa.cky_r
    send_informational(session, [NotifyPayload(notify_type, data, protocol, spi)])


def send_delete_children(session: "IkeV1Session", children: Sequence["ChildSa"]) -> None:
    """One Delete per protocol with our inbound SPIs."""
    by_proto: dict[int, list[bytes]] = {}
    for c in children:
        by_proto.setdefault(c.p2.protocol, []).append(c.spi_in.to_bytes(4, "big"))
    if by_proto:
        send_informational(session, [DeletePayload(p, spis) for p, spis in by_proto.items()])


def send_delete_isakmp(session: "IkeV1Session", children: Sequence["ChildSa"]) -> None:
    """Delete the IPsec SAs, then the ISAKMP SA (as strongSwan and Junos do)."""
    send_delete_children(session, children)
    sa = session.sa
    send_informational(session, [DeletePayload(ProtocolId.ISAKMP, [sa.cky_i + sa.cky_r])])


def send_connected(session: "IkeV1Session", child: "ChildSa") -> None:
    """CONNECTED after a Quick Mode with the commit bit (RFC 2408 §3.1, §3.14.1): the SPI is
    our inbound SPI of the new pair."""
    send_notify(session, NotifyType.CONNECTED, child.p2.protocol,
                child.spi_in.to_bytes(4, "big"))


def send_dpd(session: "IkeV1Session") -> None:
    """An R-U-THERE with the next sequence number (RFC 3706 §5.3)."""
    s = session
    s.dpd_seq = (s.dpd_seq + 1) & 0xFFFFFFFF
    s.dpd_outstanding += 1
    send_notify(s, NotifyType.R_U_THERE, data=s.dpd_seq.to_bytes(4, "big"))


def dpd_tick(session: "IkeV1Session", now: float) -> None:
    """Junos DPD: probe when due; dead after `dpd_threshold` probes unanswered."""
    s, cfg = session, session.config
    if s.dpd_next is None or s.dpd_next > now or not cfg.dpd_interval:
        return
    if not s.peer_dpd:           # RFC 3706 §4: only with a peer that announced DPD
        s.dpd_next = None
        s.count("dpd-unsupported-by-peer")
        return
    interval = cfg.dpd_interval
    if s.dpd_outstanding >= cfg.dpd_threshold:
        s.shutdown("dead peer", RemoteIkeError(
            f"{s.dpd_outstanding} DPD probes unanswered (interval {interval:g} s)"))
        return
    heard = s.last_heard
    if cfg.dpd_always_send or s.dpd_outstanding or (
            heard + interval <= now and (cfg.dpd_mode != "optimized" or
                                         s.traffic_out_at > heard)):
        send_dpd(s)
    s.dpd_next = now + interval


def receive_informational(session: "IkeV1Session", msg: IsakmpMessage, addr: "Addr",
                          via_natt: bool) -> None:
    s = session
    sa = s.sa
    if not msg.header.encrypted:
        if s.state == IkeV1SaState.PHASE1 and s.phase1 is not None and s.phase1.initiator:
            err = next((p for p in msg.payloads if isinstance(p, NotifyPayload)
                        and p.notify_type < 16384), None)
            if err is not None:
                # The peer refused our Phase 1 (e.g. NO-PROPOSAL-CHOSEN to message 1).
                s.shutdown("establishment failed", RemoteIkeError(
                    f"peer sent {notify_name(err.notify_type)}", err.notify_type))
                return
        s.count("unprotected-informational")
        return
    if sa.keys is None or sa.cipher is None or s.state != IkeV1SaState.ESTABLISHED:
        s.count("unexpected")
        return
    chain = s.phase2_chain(msg.header.message_id)
    payloads = sa.cipher.open(msg, chain)
    if not payloads or type(payloads[0]) is not HashPayload:
        s.count("unprotected-informational")
        return
    want = qm_hash1(sa.hash_name, sa.keys.skeyid_a, msg.header.message_id,
                    b"".join(p.raw for p in payloads[1:]))
    if not hmac.compare_digest(payloads[0].data, want):    # type: ignore[attr-defined]
        s.count("bad-hash")
        return
    s.note_path(via_natt, addr)
    s.dpd_outstanding = 0            # the peer is alive (RFC 3706 §5.5)
    for p in payloads[1:]:
        if isinstance(p, NotifyPayload):
            _notify(s, p)
        elif isinstance(p, DeletePayload):
            _delete(s, p)
        if s.state == IkeV1SaState.CLOSED:
            return


def _notify(s: "IkeV1Session", p: NotifyPayload) -> None:
    t = p.notify_type
    if t == NotifyType.R_U_THERE:
        if p.spi == s.sa.cky_i + s.sa.cky_r and len(p.data) == 4:
            send_notify(s, NotifyType.R_U_THERE_ACK, data=p.data)
        else:
            s.count("bad-dpd")
    elif t == NotifyType.R_U_THERE_ACK:
        if len(p.data) == 4 and int.from_bytes(p.data, "big") == s.dpd_seq:
            s.dpd_outstanding = 0
        else:
            s.count("bad-dpd")
    elif t == NotifyType.INITIAL_CONTACT:
        s.peer_initial_contact = True
    elif t == NotifyType.CONNECTED:
        spi = int.from_bytes(p.spi, "big") if len(p.spi) == 4 else None
        for our_spi, (_, complete) in list(s.commit_waits.items()):
            if spi is None or _commit_matches(s, our_spi, spi):
                del s.commit_waits[our_spi]
                complete()
                break
    elif t < 16384:
        # An error about one of our Quick Modes (NO-PROPOSAL-CHOSEN, INVALID-ID-INFORMATION,
        # ...): it ends that Quick Mode (the one whose SPI it names, or every one).
        spi = int.from_bytes(p.spi, "big") if len(p.spi) == 4 else None
        err = RemoteIkeError(f"peer sent {notify_name(t)}", t)
        for ex in list(s.exchanges.values()):
            if spi is None or spi in ex.pair_spis():
                ex.peer_refused(err)
        s.errors.append(err)
    else:
        s.count("ignored-notify")


def _commit_matches(s: "IkeV1Session", our_spi: int, their_spi: int) -> bool:
    """CONNECTED names the responder's inbound SPI, i.e. our outbound SPI of the pair."""
    for ex in s.done.values():
        spi_in, spi_out = ex.pair_spis()
        if spi_in and spi_in == our_spi:
            return spi_out == their_spi
    return False


def _delete(s: "IkeV1Session", p: DeletePayload) -> None:
    if p.protocol == ProtocolId.ISAKMP:
        if s.sa.cky_i + s.sa.cky_r in p.spis:
            s.hand_over()          # re-authenticated: a newer ISAKMP SA keeps the IPsec SAs
            s.shutdown("deleted by peer")
        else:
            s.count("bad-delete")
        return
    for raw in p.spis:
        if len(raw) != 4:
            s.count("bad-delete")
            continue
        child = s.child_by_out(int.from_bytes(raw, "big"))
        if child is None or child.p2.protocol != p.protocol:
            s.count("unknown-spi")
            continue
        del s.children[child.spi_in]
        s.emit(ChildSaDown(child.spi_in, child.spi_out, "deleted by peer"))
