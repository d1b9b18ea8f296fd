"""Aggressive Mode (RFC 2409 §5, §5.4), both roles: three messages, identities in the clear.

    Initiator                          Responder
    ----------------------------------------------------------------------
    1  HDR, SA, KE, Ni, IDii [, CERTREQ], VID...  -->
    2              <--  HDR, SA, KE, Nr, IDir, [CERT,] HASH_R | SIG_R [, CERTREQ],
                        VID... [, NAT-D, NAT-D]
    3  HDR*, [CERT,] HASH_I | SIG_I [, NAT-D, NAT-D] [, N(INITIAL-CONTACT)]  -->

The DH group cannot be negotiated (it is fixed by the KE of message 1, RFC 2409 §5.4), so
the initiator offers only the proposals with its first proposal's group. Message 3 is
encrypted with the Phase 1 IV (as strongSwan sends it); an unencrypted one is accepted too.
The responder retransmits message 2 until message 3 arrives; the initiator answers a
retransmitted message 2 with message 3 again. With a NAT (RFC 3947 §3.2, §4) the initiator
sends message 3 to port 4500.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import IkeError, LocalIkeError, RemoteIkeError
from .auth import id_payload
from .constants import ExchangeType, NotifyType, ProtocolId
from .isakmp import (IdPayload, IsakmpMessage, KePayload, NoncePayload, NotifyPayload,
                     Payload, SaPayload)
from .natt import natd_payloads, vendor_ids
from .phase1 import Phase1Exchange, one

if TYPE_CHECKING:  # pragma: no cover
    from .session import Addr, IkeV1Session


class AggressiveMode(Phase1Exchange):
    exchange_type = ExchangeType.AGGRESSIVE
    mode_name = "Aggressive"

    def __init__(self, session: "IkeV1Session", initiator: bool) -> None:
        super().__init__(session, initiator)
        if initiator:
            group = self.suites[0].group
            self.suites = [x for x in self.suites if x.group == group]

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
        # the group is fixed by our KE (RFC 2409 §5.4): compute it with the first suite's
        s.sa.suite = self.suites[0]
        ke = self.new_ke()
        s.sa.suite = None
        s.sa.nonce_i = self.nonce().nonce
        out: list[Payload] = [sa, KePayload(ke), NoncePayload(s.sa.nonce_i),
                              id_payload(self.my_id), *self.certreqs(), *self._vids()]
        self.step = 1
        s.send(self, s.message(self, self.exchange_type, out, False), True)

    def handle(self, msg: IsakmpMessage, addr: "Addr", via_natt: bool) -> None:
        if self.initiator:
            self._handle_i(msg, addr, via_natt)
        else:
            self._handle_r(msg, addr, via_natt)

    def _handle_i(self, msg: IsakmpMessage, addr: "Addr", via_natt: bool) -> None:
        s = self.session
        if self.step != 1 or msg.header.encrypted:
            s.count("unexpected")
            return
        payloads = msg.payloads                                       # message 2
        self.check_notify(payloads)
        sa = one(payloads, SaPayload, "SA")
        ke = one(payloads, KePayload, "KE")
        nonce = one(payloads, NoncePayload, "Nonce")
        s.sa.cky_r = msg.header.cky_r
        try:
            self.accept(sa)                                          # type: ignore[arg-type]
            self.peer_ke = ke.data                                   # type: ignore
            s.sa.nonce_r = nonce.nonce                               # type: ignore
            self.derive()
            self.verify_peer(payloads)
        except (RemoteIkeError, LocalIkeError) as exc:
            self.fail(exc)
            return
        s.note_path(via_natt, addr)
        self.note_vendor_ids(payloads)
        self.note_certreq(payloads)
        self.nat_detection(payloads, addr)
        if s.nat_detected and s.peer_natt and s.config.natt and not s.natt:
            s.natt = True                               # RFC 3947 §4: float for message 3
            s.remote_addr = (s.remote_addr[0], s.config.natt_port)
        out = [p for p in self.my_auth() if not isinstance(p, IdPayload)] + self._natd()
        if s.send_initial_contact:
            out.append(NotifyPayload(NotifyType.INITIAL_CONTACT, b"", ProtocolId.ISAKMP,
                                     s.sa.cky_i + s.sa.cky_r))
        self.step = 3
        s.send(self, s.message(self, self.exchange_type, out, True), False)
        self.established()

    # -- responder ---------------------------------------------------------------------------
    def _handle_r(self, msg: IsakmpMessage, addr: "Addr", via_natt: bool) -> None:
        s = self.session
        if self.step == 0 and not msg.header.encrypted:               # message 1
            payloads = msg.payloads
            sa = one(payloads, SaPayload, "SA")
            ke = one(payloads, KePayload, "KE")
            nonce = one(payloads, NoncePayload, "Nonce")
            self.peer_id_payload = one(payloads, IdPayload, "ID")
            s.remote_addr = tuple(addr)
            try:
                chosen = self.choose(sa)                             # type: ignore[arg-type]
                self.peer_ke = ke.data                               # type: ignore
                s.sa.nonce_i = nonce.nonce                           # type: ignore
                s.sa.nonce_r = self.nonce().nonce
                self._check_peer_id()          # picks the configuration, so the PSK
                my_ke = self.new_ke()
                self.derive()
            except IkeError as exc:
                self.fail(exc)
                return
            s.note_path(via_natt, addr)
            self.note_vendor_ids(payloads)
            self.note_certreq(payloads)
            out: list[Payload] = [chosen, KePayload(my_ke), NoncePayload(s.sa.nonce_r),
                                  *self.my_auth(), *self.certreqs(), *self._vids(),
                                  *self._natd()]
            self.step = 2
            s.send(self, s.message(self, self.exchange_type, out, False), True)
        elif self.step == 2:                                          # message 3
            if msg.header.encrypted:
                assert s.sa.cipher is not None
                payloads = s.sa.cipher.open(msg, s.sa.chain)
            else:
                payloads = msg.payloads
            try:
                self.verify_peer([self.peer_id_payload, *payloads])
            except (RemoteIkeError, LocalIkeError) as exc:
                self.fail(exc)
                return
            s.sa.chain.commit()
            s.note_path(via_natt, addr)
            self.nat_detection(payloads, addr)
            s.peer_initial_contact = any(
                isinstance(p, NotifyPayload) and p.notify_type == NotifyType.INITIAL_CONTACT
                for p in payloads)
            self.established()
        else:
            s.count("unexpected")

    def _check_peer_id(self) -> None:
        from ..auth import Identity
        s = self.session
        idp = self.peer_id_payload
        assert isinstance(idp, IdPayload)
        peer = Identity(idp.id_type, idp.data)
        self.select_config(peer)
        if s.config.remote_id is not None and peer != s.config.remote_id:
            raise RemoteIkeError(f"peer identity {peer} is not the configured "
                                 f"{s.config.remote_id}", NotifyType.INVALID_ID_INFORMATION)
