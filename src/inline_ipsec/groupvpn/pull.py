"""GROUPKEY-PULL (RFC 6407 §3) under an IKEv1 Phase 1 SA, sans-I/O.

    Member (initiator)                        Key server (responder)
    -------------------------------------------------------------------------------
    1  HDR*, HASH(1), Ni, ID            -->
    2                                   <--   HDR*, HASH(2), Nr, SA
    3  HDR*, HASH(3)                    -->
    4                                   <--   HDR*, HASH(4), SEQ, KD

    HASH(1) = prf(SKEYID_a, M-ID | Ni | ID)
    HASH(2) = prf(SKEYID_a, M-ID | Ni_b | Nr | SA)
    HASH(3) = prf(SKEYID_a, M-ID | Ni_b | Nr_b)
    HASH(4) = prf(SKEYID_a, M-ID | Ni_b | Nr_b | SEQ | KD)

(RFC 6407 §3.2; "Ni"/"Nr"/"SA"/... are whole payloads as sent, "_b" their bodies.) The ID is
ID_KEY_ID carrying the 4-byte group ID (RFC 6407 §5.2 allows ID_KEY_ID for the group). The
messages are encrypted with the Phase 1 keys and IV rules of a Quick Mode (RFC 2409
Appendix B: IV = hash(last Phase 1 block | M-ID), then chained). The exchange number 32 is
Quick Mode's in the IPsec DOI: `GdoiSession` routes it here instead.

A message whose HASH fails is dropped and counted (the peer retransmits); a refused
registration (unknown group, member not allowed, registration limit) is answered with a
protected notification and ends the exchange; no key is ever taken from an unverified
message.
"""
from __future__ import annotations

import hmac
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional, Protocol

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from ..ike.errors import IkeError, RemoteIkeError
from ..ike.states import GdoiPullState, IkeV1SaState, transition
from ..ike.v1.constants import IdType, NotifyType
from ..ike.v1.exchange import Exchange
from ..ike.v1.isakmp import (HashPayload, IdPayload, IsakmpMessage, NoncePayload, Payload,
                             encode_chain, malformed)
from ..ike.v1.keymat import prf
from ..ike.v1.session import MAX_QUICK_MODES, IkeV1Session
from .constants import GdoiExchange
from .payloads import GdoiSaPayload, KdPayload, SeqPayload, decode_chain

if TYPE_CHECKING:  # pragma: no cover
    from ..ike.v1.session import Addr

NONCE_LEN = 16


@dataclass
class GroupKeysReceived:
    """Event: a GROUPKEY-PULL completed; the policy (SA) and keys (KD) of the group, the
    push sequence number to start from (SEQ)."""

    group_id: int
    sa: GdoiSaPayload
    kd: KdPayload
    seq: int


@dataclass
class RegistrationFailed:
    """Event: the key server refused or did not answer a GROUPKEY-PULL."""

    group_id: int
    reason: str


class PullProvider(Protocol):
    """What the key server supplies to a GROUPKEY-PULL it answers."""

    def pull_offer(self, session: "GdoiSession", group_id: int) -> tuple[GdoiSaPayload, Any]:
        """The SA payload for a member of `group_id`, or RemoteIkeError (refused)."""

    def pull_keys(self, session: "GdoiSession", group_id: int,
                  ctx: Any) -> tuple[int, KdPayload]:
        """(SEQ, KD) for the member; registers it."""


def group_id_payload(group_id: int) -> IdPayload:
    return IdPayload(IdType.ID_KEY_ID, struct.pack("!I", group_id))


def _hash(s: IkeV1Session, data: bytes) -> bytes:
    assert s.sa.keys is not None
    return prf(s.sa.hash_name, s.sa.keys.skeyid_a, data)


class GroupkeyPull(Exchange):
    """One GROUPKEY-PULL, either role."""

    exchange_type = GdoiExchange.GROUPKEY_PULL

    def __init__(self, session: "GdoiSession", mid: int, initiator: bool,
                 group_id: int = 0) -> None:
        super().__init__(session, mid, initiator)
        self.chain = session.phase2_chain(mid)
        self.group_id = group_id
        #: a `GdoiPullState` (ike/states.py); changed only by `transition`
        self.state = GdoiPullState.NEW
        self.nonce_i = b""
        self.nonce_r = b""
        self.sa: Optional[GdoiSaPayload] = None
        self.ctx: Any = None

    @property
    def gdoi(self) -> "GdoiSession":
        return self.session  # type: ignore[return-value]

    # -- protection --------------------------------------------------------------------------
    def _open(self, msg: IsakmpMessage) -> list[Payload]:
        """Decrypt and decode; anything wrong here is an unverified message: `_Drop`."""
        try:
            return self._decrypt(msg)
        except RemoteIkeError as exc:
            self.chain.candidate = None
            raise _Drop(exc) from None

    def _decrypt(self, msg: IsakmpMessage) -> list[Payload]:
        s = self.session
        if not msg.header.encrypted or s.sa.keys is None or s.sa.suite is None:
            raise malformed("unencrypted GROUPKEY-PULL message")
        block = s.sa.suite.block
        body = msg.encrypted
        if not body or len(body) % block:
            raise malformed(f"encrypted body of {len(body)} bytes")
        key = s.sa.keys.enc_key
        algo = TripleDES(key) if block == 8 else algorithms.AES(key)
        dec = Cipher(algo, modes.CBC(self.chain.iv)).decryptor()
        plain = dec.update(body) + dec.finalize()
        payloads = decode_chain(msg.header.next_payload, plain, allow_padding=True)
        self.chain.candidate = body[-block:]
        if not payloads or type(payloads[0]) is not HashPayload:
            raise RemoteIkeError("GROUPKEY-PULL message without HASH first",
                                 NotifyType.INVALID_HASH_INFORMATION)
        return payloads

    def _verified(self, payloads: list[Payload], prefix: bytes) -> bool:
        mid = self.mid.to_bytes(4, "big")
        after = b"".join(p.raw for p in payloads[1:])
        if hmac.compare_digest(payloads[0].data, _hash(self.session,    # type: ignore
                                                       mid + prefix + after)):
            self.chain.commit()
            return True
        self.chain.candidate = None
        self.session.count("bad-hash")
        return False

    def _send(self, payloads: list[Payload], prefix: bytes, retransmit: bool) -> None:
        s = self.session
        h = _hash(s, self.mid.to_bytes(4, "big") + prefix + encode_chain(payloads))
        s.send(self, s.message(self, self.exchange_type, [HashPayload(h), *payloads], True),
               retransmit)

    def handle(self, msg: IsakmpMessage, addr: "Addr", via_natt: bool) -> None:
        step = {(True, GdoiPullState.SENT1): self._handle_2,
                (True, GdoiPullState.SENT3): self._handle_4,
                (False, GdoiPullState.NEW): self._handle_1,
                (False, GdoiPullState.SENT2): self._handle_3}.get((self.initiator, self.state))
        if step is None:
            self.session.count("unexpected")
            return
        try:
            step(msg)
        except _Drop as drop:
            self.session.record(drop.error, "malformed")
            if not self.initiator and self.state == GdoiPullState.NEW:
                self.session.forget(self)
        except RemoteIkeError as exc:
            # the message was verified: tell the peer why, end this exchange only
            self._fail(exc, notify=True)

    def _fail(self, exc: IkeError, notify: bool = False) -> None:
        from ..ike.v1.informational import send_notify
        s = self.session
        if notify and exc.notify_hint:
            try:
                send_notify(s, exc.notify_hint)
            except IkeError:
                pass
        transition(self, GdoiPullState.FAILED)
        self.deadline = None
        s.forget(self)
        s.record(exc, "groupkey-pull-failed")
        if self.initiator:
            s.emit(RegistrationFailed(self.group_id, str(exc)))

    def peer_refused(self, error: RemoteIkeError) -> None:
        """The key server refused us: a protected error notification, which the IKEv1
        Informational handler hands to our exchanges; only one waiting for message 2 ends."""
        if self.initiator and self.state == GdoiPullState.SENT1:
            self._fail(error)

    def on_timeout(self) -> None:
        self._fail(RemoteIkeError(f"GROUPKEY-PULL {self.mid:#010x}: no answer"))

    # -- member ------------------------------------------------------------------------------
    def start(self) -> None:
        s = self.session
        self.nonce_i = s.random(NONCE_LEN)
        transition(self, GdoiPullState.SENT1)
        self._send([NoncePayload(self.nonce_i), group_id_payload(self.group_id)], b"", True)

    def _handle_2(self, msg: IsakmpMessage) -> None:
        payloads = self._open(msg)
        if not self._verified(payloads, self.nonce_i):
            return
        self.session.note_path(False, self.session.remote_addr)
        nonce = _one(payloads, NoncePayload, "Nonce")
        self.sa = _one(payloads, GdoiSaPayload, "SA")
        self.nonce_r = nonce.nonce
        if not self.sa.teks and self.sa.kek is None:
            raise RemoteIkeError("SA payload without a KEK or a TEK",
                                 NotifyType.BAD_PROPOSAL_SYNTAX)
        transition(self, GdoiPullState.SENT3)
        self._send([], self.nonce_i + self.nonce_r, True)

    def _handle_4(self, msg: IsakmpMessage) -> None:
        s = self.session
        payloads = self._open(msg)
        if not self._verified(payloads, self.nonce_i + self.nonce_r):
            return
        kd = _one(payloads, KdPayload, "KD")
        seq = next((p.seq for p in payloads if type(p) is SeqPayload), 0)
        transition(self, GdoiPullState.DONE)
        self.finish()
        s.finished(self)
        assert self.sa is not None
        s.emit(GroupKeysReceived(self.group_id, self.sa, kd, seq))

    # -- key server --------------------------------------------------------------------------
    def _handle_1(self, msg: IsakmpMessage) -> None:
        s = self.gdoi
        payloads = self._open(msg)
        if not self._verified(payloads, b""):
            s.forget(self)
            return
        self.nonce_i = _one(payloads, NoncePayload, "Nonce").nonce
        ident = _one(payloads, IdPayload, "ID")
        transition(self, GdoiPullState.SENT2)   # verified: a refusal from now on is notified
        if ident.id_type != IdType.ID_KEY_ID or len(ident.data) != 4:
            raise RemoteIkeError("GROUPKEY-PULL ID is not a 4-byte ID_KEY_ID group",
                                 NotifyType.INVALID_ID_INFORMATION)
        self.group_id = struct.unpack("!I", ident.data)[0]
        if s.provider is None:
            raise RemoteIkeError("not a key server", NotifyType.INVALID_ID_INFORMATION)
        self.sa, self.ctx = s.provider.pull_offer(s, self.group_id)
        self.nonce_r = s.random(NONCE_LEN)
        self._send([NoncePayload(self.nonce_r), self.sa], self.nonce_i, True)

    def _handle_3(self, msg: IsakmpMessage) -> None:
        s = self.gdoi
        payloads = self._open(msg)
        if not self._verified(payloads, self.nonce_i + self.nonce_r):
            return
        assert s.provider is not None
        seq, kd = s.provider.pull_keys(s, self.group_id, self.ctx)
        transition(self, GdoiPullState.DONE)
        self._send([SeqPayload(seq=seq), kd], self.nonce_i + self.nonce_r, False)
        self.finish()
        s.finished(self)


class _Drop(Exception):
    """A message that could not be decrypted or decoded: dropped and counted."""

    def __init__(self, error: RemoteIkeError) -> None:
        super().__init__(str(error))
        self.error = error


def _one(payloads: list[Payload], cls: type, name: str) -> Any:
    found = [p for p in payloads if type(p) is cls]
    if len(found) != 1:
        raise RemoteIkeError(f"GROUPKEY-PULL message with {len(found)} {name} payloads",
                             NotifyType.PAYLOAD_MALFORMED)
    return found[0]


class GdoiSession(IkeV1Session):
    """An IKEv1 ISAKMP SA on the GDOI port: Phase 1 as the IKEv1 session does it, then
    GROUPKEY-PULL exchanges instead of Quick Modes (RFC 6407 §2, §3). A member (`group_id`
    set) starts its registration when Phase 1 completes; a key server answers through its
    `provider`."""

    def __init__(self, *args: Any, group_id: int = 0,
                 provider: Optional[PullProvider] = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.group_id = group_id
        self.provider = provider

    def register(self, now: float) -> None:
        """Start a GROUPKEY-PULL now (a member re-registering under the same Phase 1)."""
        self.now = now
        if self.state == IkeV1SaState.ESTABLISHED:
            self._guard(self._start_pull)

    def _start_pull(self) -> None:
        ex = GroupkeyPull(self, self.new_mid(), initiator=True, group_id=self.group_id)
        self.exchanges[ex.mid] = ex
        ex.start()

    def on_phase1_done(self, event: Any) -> None:
        super().on_phase1_done(event)
        if self.sa.initiator and self.group_id:
            self._start_pull()

    def _receive(self, msg: IsakmpMessage, addr: "Addr", via_natt: bool) -> None:
        h = msg.header
        if h.exchange != GdoiExchange.GROUPKEY_PULL:
            super()._receive(msg, addr, via_natt)
            return
        if not self._accepts(h):
            self.count("foreign-cookie")
            return
        ex = self.exchanges.get(h.message_id) or self.done.get(h.message_id)
        if ex is None:
            if self.state != IkeV1SaState.ESTABLISHED or h.message_id == 0 or self.sa.initiator:
                self.count("unexpected")
                return
            if len(self.exchanges) >= MAX_QUICK_MODES:
                self.count("pull-limit")
                return
            ex = GroupkeyPull(self, h.message_id, initiator=False)
            self.exchanges[h.message_id] = ex
        if ex.last_in == msg.raw:
            if ex.out and ex.out_for == msg.raw:
                self._out += [(d, self.remote_addr) for d in ex.out]
            return
        if ex.done:
            self.count("late")
            return
        self._processing = msg.raw
        try:
            ex.handle(msg, addr, via_natt)
        finally:
            self._processing = None
        ex.last_in = msg.raw
