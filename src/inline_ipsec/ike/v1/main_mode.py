"""Main Mode, the identity-protection exchange (RFC 2409 §5, RFC 2408 §4.5), both roles.

    Initiator                          Responder
    ----------------------------------------------------------------------
    1  HDR, SA, VID...                -->
    2                                 <--  HDR, SA, VID...
    3  HDR, KE, Ni [, CERTREQ] [, NAT-D, NAT-D]  -->
    4                                 <--  HDR, KE, Nr [, CERTREQ] [, NAT-D, NAT-D]
    5  HDR*, IDii, [CERT,] HASH_I | SIG_I [, N(INITIAL-CONTACT)]  -->
    6                                 <--  HDR*, IDir, [CERT,] HASH_R | SIG_R

HDR* is encrypted (IV chain of RFC 2409 Appendix B). NAT-D payloads and the move to port 4500
before message 5 follow RFC 3947 §3.2 and §4. A fatal error (no acceptable proposal, bad
HASH or signature, wrong identity) is answered with a notification and ends the ISAKMP SA;
a message that does not even decrypt or parse is dropped and counted, so a forged one cannot
end a negotiation (the peer's retransmission, or the half-open timeout, decides).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import IkeError, LocalIkeError, RemoteIkeError
from .constants import ExchangeType, NotifyType, ProtocolId
from .isakmp import (IsakmpMessage, KePayload, NoncePayload, NotifyPayload,
                     Payload, SaPayload)
from .natt import natd_payloads, vendor_ids
from .phase1 import Phase1Exchange, one

if TYPE_CHECKING:  # pragma: no cover
    from .session import Addr, IkeV1Session


class MainMode(Phase1Exchange):
    exchange_type = ExchangeType.MAIN
    mode_name = "Main"

    def __init__(self, session: "IkeV1Session", initiator: bool) -> None:
        super().__init__(session, initiator)

    def _vids(self) -> list[Payload]:
        c = self.session.config
        return vendor_ids(c.natt, True, c.fragmentation)

    def _natd(self) -> list[Payload]:
        s = self.session
        return natd_payloads(s) if s.config.natt and s.peer_natt else []

    # -- initiator ---------------------------------------------------------------------------
    def start(self) -> None:
        s = self.session
        sa = self.sa_payload()
        s.sa.sai_b = sa.encode_body()
        self.step = 1
        s.send(self, s.message(self, self.exchange_type, [sa, *self._vids()], False), True)

    def handle(self, msg: IsakmpMessage, addr: "Addr", via_natt: bool) -> None:
        if self.initiator:
            self._handle_i(msg, addr, via_natt)
        else:
            self._handle_r(msg, addr, via_natt)

    def _handle_i(self, msg: IsakmpMessage, addr: "Addr", via_natt: bool) -> None:
        s = self.session
        if self.step == 1 and not msg.header.encrypted:            # message 2
            payloads = msg.payloads
            self.check_notify(payloads)
            sa = one(payloads, SaPayload, "SA")
            s.sa.cky_r = msg.header.cky_r
            try:
                self.accept(sa)               # type: ignore[arg-type]
            except RemoteIkeError as exc:
                self.fail(exc)
                return
            s.note_path(via_natt, addr)
            self.note_vendor_ids(payloads)
            s.sa.nonce_i = self.nonce().nonce
            out: list[Payload] = [KePayload(self.new_ke()), NoncePayload(s.sa.nonce_i),
                                  *self.certreqs(), *self._natd()]
            self.step = 3
            s.send(self, s.message(self, self.exchange_type, out, False), True)
        elif self.step == 3 and not msg.header.encrypted:          # message 4
            payloads = msg.payloads
            self.check_notify(payloads)
            ke = one(payloads, KePayload, "KE")
            s.sa.nonce_r = one(payloads, NoncePayload, "Nonce").nonce   # type: ignore
            self.peer_ke = ke.data                                       # type: ignore
            self.note_certreq(payloads)
            try:
                self.derive()
            except IkeError as exc:
                self.fail(exc)
                return
            s.note_path(via_natt, addr)
            self.nat_detection(payloads, addr)
            if s.nat_detected and s.peer_natt and s.config.natt and not s.natt:
                s.natt = True                          # RFC 3947 §4: float before message 5
                s.remote_addr = (s.remote_addr[0], s.config.natt_port)
            out = self.my_auth()
            if s.send_initial_contact:
                out.append(NotifyPayload(NotifyType.INITIAL_CONTACT, b"", ProtocolId.ISAKMP,
                                         s.sa.cky_i + s.sa.cky_r))
            self.step = 5
            s.send(self, s.message(self, self.exchange_type, out, True), True)
        elif self.step == 5 and msg.header.encrypted:              # message 6
            assert s.sa.cipher is not None
            payloads = s.sa.cipher.open(msg, s.sa.chain)
            try:
                self.verify_peer(payloads)
            except (RemoteIkeError, LocalIkeError) as exc:
                self.fail(exc)
                return
            s.sa.chain.commit()
            s.note_path(via_natt, addr)
            self.established()
        else:
            s.count("unexpected")

    # -- responder ---------------------------------------------------------------------------
    def _handle_r(self, msg: IsakmpMessage, addr: "Addr", via_natt: bool) -> None:
        s = self.session
        if self.step == 0 and not msg.header.encrypted:            # message 1
            payloads = msg.payloads
            sa = one(payloads, SaPayload, "SA")
            s.remote_addr = tuple(addr)
            try:
                chosen = self.choose(sa)                 # type: ignore[arg-type]
            except RemoteIkeError as exc:
                self.fail(exc)
                return
            s.note_path(via_natt, addr)
            self.note_vendor_ids(payloads)
            self.step = 2
            s.send(self, s.message(self, self.exchange_type, [chosen, *self._vids()], False),
                   False)
        elif self.step == 2 and not msg.header.encrypted:          # message 3
            payloads = msg.payloads
            ke = one(payloads, KePayload, "KE")
            s.sa.nonce_i = one(payloads, NoncePayload, "Nonce").nonce   # type: ignore
            self.peer_ke = ke.data                                       # type: ignore
            self.note_certreq(payloads)
            s.sa.nonce_r = self.nonce().nonce
            my_ke = self.new_ke()
            try:
                self.derive()
            except IkeError as exc:
                self.fail(exc)
                return
            s.note_path(via_natt, addr)
            self.nat_detection(payloads, addr)
            out: list[Payload] = [KePayload(my_ke), NoncePayload(s.sa.nonce_r),
                                  *self.certreqs(), *self._natd()]
            self.step = 4
            s.send(self, s.message(self, self.exchange_type, out, False), False)
        elif self.step == 4 and msg.header.encrypted:              # message 5
            assert s.sa.cipher is not None
            payloads = s.sa.cipher.open(msg, s.sa.chain)
            try:
                self.verify_peer(payloads)
            except (RemoteIkeError, LocalIkeError) as exc:
                self.fail(exc)
                return
            s.sa.chain.commit()
            s.note_path(via_natt, addr)
            s.peer_initial_contact = any(
                isinstance(p, NotifyPayload) and p.notify_type == NotifyType.INITIAL_CONTACT
                for p in payloads)
            self.step = 6
            s.send(self, s.message(self, self.exchange_type, self.my_auth(), True), False)
            self.established()
        else:
            s.count("unexpected")

