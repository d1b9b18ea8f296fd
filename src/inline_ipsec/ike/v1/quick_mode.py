"""Quick Mode (RFC 2409 §5.5): IPsec SA pairs under the ISAKMP SA, with PFS, client identities
(proxy IDs), lifetimes in seconds and kilobytes, RESPONDER-LIFETIME, the commit bit and
make-before-break rekeying.

    Initiator                          Responder
    ----------------------------------------------------------------------
    1  HDR*, HASH(1), SA, Ni [, KE] [, IDci, IDcr]  -->
    2          <--  HDR*, HASH(2), SA, Nr [, KE] [, IDci, IDcr] [, N(RESPONDER-LIFETIME)]
    3  HDR*, HASH(3)                  -->
    (commit bit set in 2: the responder confirms with an Informational N(CONNECTED),
     and the initiator uses the SAs only then, RFC 2408 §3.1)

HASH(1) = prf(SKEYID_a, M-ID | everything after HASH), HASH(2) = prf(SKEYID_a, M-ID | Ni_b |
everything after HASH), HASH(3) = prf(SKEYID_a, 0 | M-ID | Ni_b | Nr_b); each direction's
KEYMAT = prf(SKEYID_d, [g(qm)^xy |] protocol | SPI | Ni_b | Nr_b), expanded (`keymat.py`).

The responder picks the child configuration whose selectors contain the proposed identities
(IKEv1 does not narrow: it echoes them, RFC 2409 §5.5), then the first acceptable transform
in the initiator's order. Lifetimes: a transform without one means 28800 seconds (RFC 2407
§4.5); the responder keeps the shorter of the proposed and its own and, when its own is
shorter, says so with RESPONDER-LIFETIME (RFC 2407 §4.6.3.1). A Quick Mode whose identities
and configuration match an IPsec SA pair we already have is its rekey: the new pair is
reported as `ChildSaRekeyed`, and its initiator deletes the old pair (make-before-break).
A message that fails its HASH is dropped (the peer retransmits); an authenticated but
unacceptable one is answered with a protected notification and ends only this Quick Mode.
"""
from __future__ import annotations

import functools
import hmac
import ipaddress
from typing import TYPE_CHECKING, Optional

from ..config import ChildConfig
from ..errors import IkeError, RemoteIkeError
from ..events import ChildSaDown, ChildSaRekeyed, ChildSaUp
from ..payloads import TrafficSelector
from ..states import ChildSaState, IkeV1SaState, QuickModeState, transition
from .child import ChildSa
from .constants import EncapsulationMode, ExchangeType, Flag, NotifyType, ProtocolId
from .exchange import Exchange
from .isakmp import (HashPayload, IdPayload, IsakmpMessage, KePayload, NoncePayload,
                     NotifyPayload, Payload, Proposal, SaPayload, encode_chain, malformed)
from .keymat import keymat, qm_hash1, qm_hash2, qm_hash3
from .phase1 import NONCE_LEN, key_exchange, one
from .proposals import (Phase2Suite, check_phase2_answer, lifetime_attributes,
                        parse_lifetime_attributes, pfs_group_of, phase2_proposal,
                        select_phase2)

if TYPE_CHECKING:  # pragma: no cover
    from .session import Addr, IkeV1Session

#: RFC 2407 §4.5: "If unspecified, the default value shall be assumed to be 28800 seconds".
DEFAULT_SECONDS = 28800


def _protocol(cfg: ChildConfig) -> int:
    return ProtocolId.AH if cfg.protocol == "ah" else ProtocolId.ESP


def _host(addr: "Addr") -> TrafficSelector:
    ip = ipaddress.ip_address(addr[0])
    return TrafficSelector(ip, ip)


@functools.lru_cache(maxsize=1024)
def selector(net: str) -> TrafficSelector:
    """A configured prefix as a selector (parsed once per prefix)."""
    return TrafficSelector.from_network(net)


def _within(ts: TrafficSelector, nets) -> bool:
    return any(ts.intersect(selector(n)) == ts for n in nets)


def _span(cfg: ChildConfig) -> int:
    return sum(int(selector(n).end_addr) - int(selector(n).start_addr)
               for n in list(cfg.local_ts) + list(cfg.remote_ts))


def responder_lifetime(payloads: list[Payload]) -> tuple[Optional[int], Optional[int]]:
    """(seconds, kilobytes) of a RESPONDER-LIFETIME notification (RFC 2407 §4.6.3.1)."""
    for p in payloads:
        if isinstance(p, NotifyPayload) and p.notify_type == NotifyType.RESPONDER_LIFETIME:
            return parse_lifetime_attributes(p.data)
    return None, None


class QuickMode(Exchange):
    """One Quick Mode exchange, either role."""

    exchange_type = ExchangeType.QUICK

    def __init__(self, session: "IkeV1Session", mid: int, initiator: bool,
                 config: Optional[ChildConfig] = None, rekey_of: Optional[ChildSa] = None
                 ) -> None:
        super().__init__(session, mid, initiator)
        self.chain = session.phase2_chain(mid)
        self.cfg = config
        self.rekey_of = rekey_of
        #: a `QuickModeState` (ike/states.py); changed only by `transition`
        self.state = QuickModeState.NEW
        self.spi_in = 0
        self.spi_out = 0
        self.kex = None
        self.nonce_i = b""
        self.nonce_r = b""
        self.proposal: Optional[Proposal] = None
        self.p2: Optional[Phase2Suite] = None
        self.local_ts: Optional[TrafficSelector] = None
        self.remote_ts: Optional[TrafficSelector] = None
        self.ids: list[Payload] = []
        self.g_qm = b""
        self.seconds: Optional[int] = None
        self.kilobytes: Optional[int] = None

    # -- helpers ---------------------------------------------------------------------------
    def _open(self, msg: IsakmpMessage) -> list[Payload]:
        """Decrypt, check that HASH comes first; the chain's IV is committed by the caller
        once the HASH verified."""
        s = self.session
        if not msg.header.encrypted or s.sa.cipher is None:
            raise malformed("unencrypted Quick Mode message")
        payloads = s.sa.cipher.open(msg, self.chain)
        if not payloads or type(payloads[0]) is not HashPayload:
            raise RemoteIkeError("Quick Mode message without HASH first",
                                 NotifyType.INVALID_HASH_INFORMATION)
        return payloads

    def _hash_ok(self, got: bytes, want: bytes) -> bool:
        if hmac.compare_digest(got, want):
            return True
        self.session.count("bad-hash")
        return False

    def _keys(self) -> tuple[bytes, bytes, bytes, bytes]:
        """(key_in, integ_in, key_out, integ_out): KEYMAT of each direction, keyed by the
        SPI its receiver chose (RFC 2409 §5.5)."""
        sa = self.session.sa
        assert sa.keys is not None and self.p2 is not None
        proto = self.p2.protocol
        e, a = self.p2.suite.encr_key_len, self.p2.suite.integ_key_len
        km_in = keymat(sa.hash_name, sa.keys.skeyid_d, proto, self.spi_in, self.nonce_i,
                       self.nonce_r, e + a, self.g_qm)
        km_out = keymat(sa.hash_name, sa.keys.skeyid_d, proto, self.spi_out, self.nonce_i,
                        self.nonce_r, e + a, self.g_qm)
        return km_in[:e], km_in[e:], km_out[:e], km_out[e:]

    def _child(self) -> ChildSa:
        s = self.session
        assert self.cfg is not None and self.p2 is not None
        assert self.local_ts is not None and self.remote_ts is not None
        key_in, integ_in, key_out, integ_out = self._keys()
        lport, rport = s.natt_ports()
        return ChildSa(self.cfg, self.spi_in, self.spi_out, self.p2, key_in, key_out,
                       integ_in, integ_out, self.initiator, self.local_ts, self.remote_ts,
                       s.now, float(self.seconds) if self.seconds else None, self.kilobytes,
                       local_port=lport, remote_port=rport)

    def _notify_failure(self, exc: RemoteIkeError) -> None:
        from .informational import send_notify
        s = self.session
        if exc.notify_hint:
            proto = self.proposal.protocol if self.proposal is not None else ProtocolId.ESP
            spi = (self.spi_out or self.spi_in).to_bytes(4, "big") if \
                (self.spi_out or self.spi_in) else b""
            send_notify(s, exc.notify_hint, protocol=proto, spi=spi)

    def _failed(self, exc: IkeError) -> None:
        s = self.session
        transition(self, QuickModeState.FAILED)
        self.deadline = None
        s.forget(self)
        if self.rekey_of is not None and self.rekey_of.state == ChildSaState.REKEYING:
            transition(self.rekey_of, ChildSaState.INSTALLED)
            self.rekey_of.rekey_at = s.now + 10.0 + s.random(1)[0] / 8.0
        s.record(exc, "quick-mode-failed")

    def on_timeout(self) -> None:
        self._failed(RemoteIkeError(f"Quick Mode {self.mid:#010x}: no answer"))

    def pair_spis(self) -> tuple[int, int]:
        return (self.spi_in, self.spi_out)

    def peer_refused(self, error: RemoteIkeError) -> None:
        if self.initiator and self.state == QuickModeState.SENT1:
            self._failed(error)

    def handle(self, msg: IsakmpMessage, addr: "Addr", via_natt: bool) -> None:
        if self.initiator:
            if self.state == QuickModeState.SENT1:
                self._handle_2(msg, addr, via_natt)
            else:
                self.session.count("unexpected")
        elif self.state == QuickModeState.NEW:
            self._handle_1(msg, addr, via_natt)
        elif self.state == QuickModeState.SENT2:
            self._handle_3(msg, addr, via_natt)
        else:
            self.session.count("unexpected")

    # -- initiator ---------------------------------------------------------------------------
    def start(self) -> None:
        s, cfg = self.session, self.cfg
        assert cfg is not None and s.sa.keys is not None
        proto = _protocol(cfg)
        self.spi_in = s.new_child_spi()
        group = self.rekey_of.p2.pfs_group if self.rekey_of is not None else \
            pfs_group_of(cfg.proposals, proto)
        encap = EncapsulationMode.UDP_TUNNEL if s.nat_detected else EncapsulationMode.TUNNEL
        self.seconds = int(cfg.lifetime_seconds) if cfg.lifetime_seconds else None
        self.kilobytes = cfg.lifetime_kilobytes
        self.proposal = phase2_proposal(cfg.proposals, proto, self.spi_in, encap, self.seconds,
                                        self.kilobytes, pfs_only=group)
        self.kex = key_exchange(group, s.random) if group else None
        self.nonce_i = s.random(NONCE_LEN)
        if self.rekey_of is not None:
            self.local_ts, self.remote_ts = self.rekey_of.local_ts, self.rekey_of.remote_ts
        else:
            self.local_ts = selector(cfg.local_ts[0])
            self.remote_ts = selector(cfg.remote_ts[0])
        rest: list[Payload] = [SaPayload([self.proposal]), NoncePayload(self.nonce_i)]
        if self.kex is not None:
            rest.append(KePayload(self.kex.public))
        rest += [IdPayload.from_selector(self.local_ts), IdPayload.from_selector(self.remote_ts)]
        self.ids = rest[-2:]
        h1 = qm_hash1(s.sa.hash_name, s.sa.keys.skeyid_a, self.mid, encode_chain(rest))
        transition(self, QuickModeState.SENT1)
        s.send(self, s.message(self, self.exchange_type, [HashPayload(h1), *rest], True), True)

    def _handle_2(self, msg: IsakmpMessage, addr: "Addr", via_natt: bool) -> None:
        s = self.session
        assert s.sa.keys is not None and self.proposal is not None
        payloads = self._open(msg)
        after = b"".join(p.raw for p in payloads[1:])
        want = qm_hash2(s.sa.hash_name, s.sa.keys.skeyid_a, self.mid, self.nonce_i, after)
        if not self._hash_ok(payloads[0].data, want):     # type: ignore[attr-defined]
            return
        self.chain.commit()
        s.note_path(via_natt, addr)
        body = payloads[1:]
        try:
            sa = one(body, SaPayload, "SA")
            self.spi_out, self.p2 = check_phase2_answer(sa.proposals,      # type: ignore
                                                        self.proposal)
            self.nonce_r = one(body, NoncePayload, "Nonce").nonce          # type: ignore
            if self.kex is not None:
                if self.p2.pfs_group != self.kex.group:
                    raise RemoteIkeError("responder chose another PFS group",
                                         NotifyType.NO_PROPOSAL_CHOSEN)
                self.g_qm = self.kex.shared_secret(one(body, KePayload, "KE").data)  # type: ignore
            ids = [p for p in body if type(p) is IdPayload]
            if ids and [p.body for p in ids] != [p.encode_body() for p in self.ids]:
                raise RemoteIkeError("responder changed the client identities",
                                     NotifyType.INVALID_ID_INFORMATION)
            secs, kbytes = responder_lifetime(body)
            p_secs, p_kb = self.p2.lifetime_seconds, self.p2.lifetime_kilobytes
            self.seconds = min(x for x in (self.seconds, p_secs, secs) if x) \
                if any((self.seconds, p_secs, secs)) else DEFAULT_SECONDS
            kbs = [x for x in (self.kilobytes, p_kb, kbytes) if x]
            self.kilobytes = min(kbs) if kbs else None
        except RemoteIkeError as exc:
            self._notify_failure(exc)
            self._failed(exc)
            return
        h3 = qm_hash3(s.sa.hash_name, s.sa.keys.skeyid_a, self.mid, self.nonce_i, self.nonce_r)
        s.send(self, s.message(self, self.exchange_type, [HashPayload(h3)], True), False)
        child = self._child()
        transition(self, QuickModeState.DONE)
        self.finish()
        s.finished(self)
        if msg.header.flags & Flag.COMMIT:
            wait = s.config.retransmit_timeout * 4
            s.commit_waits[self.spi_in] = (s.now + wait, lambda: self._install(child))
        else:
            self._install(child)

    def _install(self, child: ChildSa) -> None:
        """Report the new pair; a rekey replaces the old one, whose Delete we send."""
        from .informational import send_delete_children
        s = self.session
        if s.state != IkeV1SaState.ESTABLISHED:
            return
        s.children[child.spi_in] = child
        old = self.rekey_of
        if old is not None and s.children.get(old.spi_in) is old:
            transition(old, ChildSaState.REKEYED)
            s.emit(ChildSaRekeyed(old.spi_in, old.spi_out, child.negotiated()))
            del s.children[old.spi_in]
            send_delete_children(s, [old])
            s.emit(ChildSaDown(old.spi_in, old.spi_out, "rekeyed"))
        else:
            s.emit(ChildSaUp(child.negotiated()))

    # -- responder ---------------------------------------------------------------------------
    def _handle_1(self, msg: IsakmpMessage, addr: "Addr", via_natt: bool) -> None:
        s = self.session
        assert s.sa.keys is not None
        payloads = self._open(msg)
        after = b"".join(p.raw for p in payloads[1:])
        want = qm_hash1(s.sa.hash_name, s.sa.keys.skeyid_a, self.mid, after)
        if not self._hash_ok(payloads[0].data, want):     # type: ignore[attr-defined]
            return
        self.chain.commit()
        s.note_path(via_natt, addr)
        body = payloads[1:]
        try:
            out = self._choose(body)
        except RemoteIkeError as exc:
            self._notify_failure(exc)
            s.record(exc, "quick-mode-refused")
            transition(self, QuickModeState.FAILED)
            return
        assert s.sa.keys is not None
        h2 = qm_hash2(s.sa.hash_name, s.sa.keys.skeyid_a, self.mid, self.nonce_i,
                      encode_chain(out))
        flags = Flag.COMMIT if s.config.commit_bit else 0
        transition(self, QuickModeState.SENT2)
        s.exchanges[self.mid] = self
        s.send(self, s.message(self, self.exchange_type, [HashPayload(h2), *out], True,
                               flags), True)

    def _choose(self, body: list[Payload]) -> list[Payload]:
        """Pick the configuration and transform, do PFS, and build SA, Nr, [KE], [IDs],
        [RESPONDER-LIFETIME] of message 2."""
        s = self.session
        if len(s.children) >= s.config.max_children:
            raise RemoteIkeError("IPsec SA limit reached", NotifyType.NO_PROPOSAL_CHOSEN)
        sa = one(body, SaPayload, "SA")
        self.nonce_i = one(body, NoncePayload, "Nonce").nonce               # type: ignore
        ids = [p for p in body if type(p) is IdPayload]
        if len(ids) not in (0, 2):
            raise RemoteIkeError("Quick Mode needs both client identities or none",
                                 NotifyType.INVALID_ID_INFORMATION)
        if ids:
            ts_i, ts_r = ids[0].to_selector(), ids[1].to_selector()         # type: ignore
        else:
            ts_i, ts_r = _host(s.remote_addr), _host(s.local_addr)
        configs = [c for c in sorted(s.config.children, key=_span)
                   if _within(ts_i, c.remote_ts) and _within(ts_r, c.local_ts)]
        if not configs:
            raise RemoteIkeError(f"no configuration for {ts_i} === {ts_r}",
                                 NotifyType.INVALID_ID_INFORMATION)
        last: RemoteIkeError = RemoteIkeError("no acceptable Phase 2 proposal",
                                              NotifyType.NO_PROPOSAL_CHOSEN)
        for cfg in configs:
            proto = _protocol(cfg)
            ours = phase2_proposal(cfg.proposals, proto, 0, EncapsulationMode.TUNNEL,
                                   None, None)
            try:
                offered, transform, p2 = select_phase2(sa.proposals, ours)  # type: ignore
            except RemoteIkeError as exc:
                last = exc
                continue
            break
        else:
            raise last
        self.cfg, self.p2, self.proposal = cfg, p2, offered
        self.spi_out = int.from_bytes(offered.spi, "big")
        self.local_ts, self.remote_ts = ts_r, ts_i
        self.spi_in = s.new_child_spi()
        self.nonce_r = s.random(NONCE_LEN)
        out: list[Payload] = [SaPayload([Proposal(offered.num, offered.protocol,
                                                  self.spi_in.to_bytes(4, "big"),
                                                  [transform])]),
                              NoncePayload(self.nonce_r)]
        if p2.pfs_group:
            ke = one(body, KePayload, "KE")
            self.kex = key_exchange(p2.pfs_group, s.random)
            self.g_qm = self.kex.shared_secret(ke.data)                     # type: ignore
            out.append(KePayload(self.kex.public))
        if ids:
            out += [IdPayload(p.id_type, p.data, p.protocol, p.port)        # type: ignore
                    for p in ids]
        # lifetimes: the shorter of the proposal's and ours, ours announced when shorter
        their_s = p2.lifetime_seconds or DEFAULT_SECONDS
        my_s = int(cfg.lifetime_seconds) if cfg.lifetime_seconds else None
        self.seconds = min(their_s, my_s) if my_s else their_s
        their_kb, my_kb = p2.lifetime_kilobytes, cfg.lifetime_kilobytes
        self.kilobytes = min(x for x in (their_kb, my_kb) if x) if (their_kb or my_kb) \
            else None
        announce_s = self.seconds if my_s and my_s < their_s else None
        announce_kb = my_kb if my_kb and (not their_kb or my_kb < their_kb) else None
        if announce_s or announce_kb:
            out.append(NotifyPayload(NotifyType.RESPONDER_LIFETIME,
                                     lifetime_attributes(announce_s, announce_kb),
                                     offered.protocol, self.spi_in.to_bytes(4, "big")))
        return out

    def _handle_3(self, msg: IsakmpMessage, addr: "Addr", via_natt: bool) -> None:
        from .informational import send_connected
        s = self.session
        assert s.sa.keys is not None
        payloads = self._open(msg)
        want = qm_hash3(s.sa.hash_name, s.sa.keys.skeyid_a, self.mid, self.nonce_i,
                        self.nonce_r)
        if not self._hash_ok(payloads[0].data, want):     # type: ignore[attr-defined]
            return
        self.chain.commit()
        s.note_path(via_natt, addr)
        child = self._child()
        transition(self, QuickModeState.DONE)
        self.finish()
        s.finished(self)
        old = next((c for c in s.children.values() if c.state == ChildSaState.INSTALLED
                    and c.config is child.config and c.local_ts == child.local_ts
                    and c.remote_ts == child.remote_ts), None)
        s.children[child.spi_in] = child
        if old is not None:
            transition(old, ChildSaState.REKEYED)      # the initiator deletes it; else it expires
            s.emit(ChildSaRekeyed(old.spi_in, old.spi_out, child.negotiated()))
        else:
            s.emit(ChildSaUp(child.negotiated()))
        if s.config.commit_bit:
            send_connected(s, child)

