"""States of IKE SAs, child SAs and IKEv1 Quick Modes, each with one transition table.

After h11's `_state.py`: every state machine is an enum plus ONE table mapping each state to the
states it may move to, and every change goes through `transition`, which raises `IkeStateError`
on a move the table does not list. Code elsewhere only reads `x.state` and compares it with the
members (`session.state is IkeSaState.ESTABLISHED`).

The members are `str` subclasses whose values are the lower-case words the sessions always used
("established", "installed", ...): show output, logs and the exported high-availability state
(`ike/v2/ha_state.py`) read the same, and a member compares equal to its word.

- `IkeSaState`: an IKEv2 SA (RFC 7296 §1.2 initial exchanges, §1.4 deletion).
- `ChildSaState`: a child SA of either IKE version (RFC 7296 §1.3 creation, §2.8 rekeying,
  §2.8.1 simultaneous rekeying, §1.4.1 deletion; RFC 2409 §5.5 for IKEv1 Quick Mode SAs).
- `IkeV1SaState`: an IKEv1 ISAKMP SA (RFC 2409 §5 Main/Aggressive Mode, phase 1).
- `QuickModeState`: one IKEv1 Quick Mode exchange (RFC 2409 §5.5).
- `GdoiPullState`: one GDOI GROUPKEY-PULL exchange (RFC 6407 §3.2).
- `GroupMemberState`: a group VPN member's registration with its key server (RFC 6407 §3).

`ike/v2/session.py` also defines a class named `IkeSaState` (the keys, SPIs and message IDs of
one IKE SA); modules that use both import this enum as `IkeState`.
"""
from __future__ import annotations

import enum
from typing import Any, Mapping, Type, TypeVar

from .errors import LocalIkeError

__all__ = ["ChildSaState", "GdoiPullState", "GroupMemberState", "IkeSaState", "IkeStateError",
           "IkeV1SaState", "QuickModeState", "TRANSITIONS", "allowed", "enter", "transition"]


class IkeStateError(LocalIkeError):
    """A state change the transition table does not allow: a bug on our side, whatever the
    peer sent (the protocol code checks a message against the state before it moves)."""

    def __init__(self, owner: str, old: object, new: object) -> None:
        super().__init__(f"{owner}: no transition from {str(old)!r} to {str(new)!r}")
        self.old = old
        self.new = new


class _State(str, enum.Enum):
    """A state that prints, formats and hashes as its word (the value)."""

    def __str__(self) -> str:
        return str.__str__(self)

    def __format__(self, spec: str) -> str:
        return str.__format__(str.__str__(self), spec)

    __hash__ = str.__hash__


class IkeSaState(_State):
    """An IKEv2 SA (RFC 7296).

    CREATED: no message yet sent or accepted. INIT: IKE_SA_INIT under way (initiator: sent;
    responder: answered, IKE_AUTH awaited) (§1.2). AUTH: the initiator got the IKE_SA_INIT
    response and sent IKE_AUTH. ESTABLISHED: IKE_AUTH completed; CREATE_CHILD_SA and
    INFORMATIONAL exchanges may run (§1.3, §1.4). DELETING: our Delete of the IKE SA is in flight
    (§1.4.1). CLOSED: gone (deleted, failed, timed out or handed to another node).
    """

    CREATED = "created"
    INIT = "init"
    AUTH = "auth"
    ESTABLISHED = "established"
    DELETING = "deleting"
    CLOSED = "closed"


class ChildSaState(_State):
    """A child SA pair (IPsec SA pair of IKEv1 Quick Mode) inside an IKE SA.

    INSTALLED: carrying traffic. REKEYING: our rekey of it is in flight (RFC 7296 §2.8; RFC 2409
    §5.5 Quick Mode with the same selectors). REKEYED: replaced by a new SA, its Delete pending
    (§2.8: the initiator of the rekey deletes the old SA). DELETING: our Delete is in flight or
    the hard lifetime ran out (§1.4.1, §2.8). PENDING: the peer's replacement created while our
    own rekey of the same SA is in flight, not yet reported (simultaneous rekey, §2.8.1).
    REDUNDANT: the new SA a simultaneous rekey made superfluous, never reported, being deleted
    (§2.8.1).
    """

    INSTALLED = "installed"
    REKEYING = "rekeying"
    REKEYED = "rekeyed"
    DELETING = "deleting"
    PENDING = "pending"
    REDUNDANT = "redundant"


class IkeV1SaState(_State):
    """An IKEv1 ISAKMP SA (RFC 2409 §5).

    CREATED: nothing sent or accepted yet. PHASE1: Main Mode (§5, six messages) or Aggressive
    Mode (§5, three messages) under way. ESTABLISHED: phase 1 done; Quick Modes (§5.5) and
    Informational exchanges may run. CLOSED: deleted, failed or timed out.
    """

    CREATED = "created"
    PHASE1 = "phase1"
    ESTABLISHED = "established"
    CLOSED = "closed"


class QuickModeState(_State):
    """One IKEv1 Quick Mode exchange (RFC 2409 §5.5): HDR*, HASH(1), SA, Ni ... from the
    initiator; HASH(2), SA, Nr ... back; HASH(3) to finish.

    NEW: created, nothing sent. SENT1: the initiator sent message 1. SENT2: the responder
    sent message 2. DONE: the SA pair is keyed. FAILED: refused, malformed or timed out.
    """

    NEW = "new"
    SENT1 = "sent1"
    SENT2 = "sent2"
    DONE = "done"
    FAILED = "failed"


class GdoiPullState(_State):
    """One GDOI GROUPKEY-PULL exchange (RFC 6407 §3.2): HDR*, HASH(1), Ni, ID from the
    member; HASH(2), Nr, SA back; HASH(3) [KE_I, ...]; HASH(4), [SEQ,] KD to finish.

    NEW: created, nothing sent. SENT1: the member sent message 1. SENT2: the key server
    verified message 1 (a refusal from then on is notified) and sent message 2. SENT3: the
    member sent message 3. DONE: the keys were delivered. FAILED: refused or timed out.
    """

    NEW = "new"
    SENT1 = "sent1"
    SENT2 = "sent2"
    SENT3 = "sent3"
    DONE = "done"
    FAILED = "failed"


class GroupMemberState(_State):
    """A group VPN member's registration with its key server (RFC 6407 §3).

    IDLE: never started. REGISTERING: a Phase 1 and GROUPKEY-PULL under way (a retry starts
    a new one and stays here). REGISTERED: the group's keys installed. FAILED: the last registration was
    refused, lost or delivered unusable keys; the next retry starts a new one.
    """

    IDLE = "idle"
    REGISTERING = "registering"
    REGISTERED = "registered"
    FAILED = "failed"


_I = IkeSaState
_C = ChildSaState
_V1 = IkeV1SaState
_Q = QuickModeState
_P = GdoiPullState
_M = GroupMemberState

#: The transition tables: state -> the states it may move to. A terminal state maps to an
#: empty set. One table per enum; `transition` picks it by the new state's type.
TRANSITIONS: Mapping[Type[_State], Mapping[Any, frozenset]] = {
    IkeSaState: {
        # an initiator's connect() sends IKE_SA_INIT; a responder answers it (§1.2); a
        # high-availability node restores an SA another node established (ike/v2/ha_state.py)
        _I.CREATED: frozenset({_I.INIT, _I.ESTABLISHED, _I.CLOSED}),
        # the initiator sends IKE_AUTH; the responder completes IKE_AUTH (§1.2)
        _I.INIT: frozenset({_I.AUTH, _I.ESTABLISHED, _I.CLOSED}),
        _I.AUTH: frozenset({_I.ESTABLISHED, _I.CLOSED}),
        # we send a Delete for the IKE SA, or it ends at once (peer's Delete, DPD, §1.4.1)
        _I.ESTABLISHED: frozenset({_I.DELETING, _I.CLOSED}),
        _I.DELETING: frozenset({_I.CLOSED}),
        _I.CLOSED: frozenset(),
    },
    ChildSaState: {
        # a rekey starts (§2.8); the responder of a rekey replaces it at once; a new SA from a
        # simultaneous rekey is held back (PENDING) or loses at once (REDUNDANT) (§2.8.1);
        # a Delete or the hard lifetime (§1.4.1, §2.8)
        _C.INSTALLED: frozenset({_C.REKEYING, _C.REKEYED, _C.PENDING, _C.REDUNDANT,
                                 _C.DELETING}),
        # the rekey failed (kept, retried later), succeeded, or the SA is deleted meanwhile
        _C.REKEYING: frozenset({_C.INSTALLED, _C.REKEYED, _C.DELETING}),
        _C.REKEYED: frozenset({_C.DELETING}),
        # §2.8.1: the peer's new SA wins (reported, INSTALLED) or is the redundant one
        _C.PENDING: frozenset({_C.INSTALLED, _C.REDUNDANT, _C.DELETING}),
        _C.REDUNDANT: frozenset({_C.DELETING}),
        _C.DELETING: frozenset(),
    },
    IkeV1SaState: {
        # Main or Aggressive Mode starts (we send or answer its first message, §5)
        _V1.CREATED: frozenset({_V1.PHASE1, _V1.CLOSED}),
        _V1.PHASE1: frozenset({_V1.ESTABLISHED, _V1.CLOSED}),
        _V1.ESTABLISHED: frozenset({_V1.CLOSED}),
        _V1.CLOSED: frozenset(),
    },
    QuickModeState: {
        _Q.NEW: frozenset({_Q.SENT1, _Q.SENT2, _Q.FAILED}),
        _Q.SENT1: frozenset({_Q.DONE, _Q.FAILED}),
        _Q.SENT2: frozenset({_Q.DONE, _Q.FAILED}),
        _Q.DONE: frozenset(),
        _Q.FAILED: frozenset(),
    },
    GdoiPullState: {
        # the member sends message 1; the key server verified it and answers
        _P.NEW: frozenset({_P.SENT1, _P.SENT2, _P.FAILED}),
        _P.SENT1: frozenset({_P.SENT3, _P.FAILED}),
        _P.SENT2: frozenset({_P.DONE, _P.FAILED}),
        _P.SENT3: frozenset({_P.DONE, _P.FAILED}),
        _P.DONE: frozenset(),
        _P.FAILED: frozenset(),
    },
    GroupMemberState: {
        _M.IDLE: frozenset({_M.REGISTERING}),
        # the keys arrive; the pull or its ISAKMP SA fails (a retry stays REGISTERING)
        _M.REGISTERING: frozenset({_M.REGISTERED, _M.FAILED}),
        # re-registration before the keys expire, after a lost push, or on demand; a new
        # GROUPKEY-PULL under the same Phase 1 (GdoiSession.register) fails (or delivers
        # new keys, which leaves the member REGISTERED)
        _M.REGISTERED: frozenset({_M.REGISTERING, _M.FAILED}),
        _M.FAILED: frozenset({_M.REGISTERING}),
    },
}

S = TypeVar("S", bound=_State)


def allowed(old: S, new: S) -> bool:
    """True when `old` and `new` belong to the same machine and its table lets `old` move
    to `new`."""
    kind = type(new)
    return kind in TRANSITIONS and type(old) is kind and new in TRANSITIONS[kind][old]


def transition(obj: Any, new: S) -> S:
    """Move `obj.state` to `new` if the table of `new`'s enum allows it, else raise
    `IkeStateError` and leave the state as it was. `obj.state` must be a member of the same
    enum: a plain word or another machine's state is refused too. Returns the old state."""
    kind = type(new)
    if kind not in TRANSITIONS:
        raise TypeError(f"{new!r} is not an IKE state")
    old = obj.state
    if type(old) is not kind or new not in TRANSITIONS[kind][old]:
        raise IkeStateError(type(obj).__name__, old, new)
    obj.state = new
    return old


def enter(obj: Any, new: S) -> bool:
    """`transition` to `new` unless `obj` is in it already (the tables have no self-loops:
    staying is not a transition). True when the state changed."""
    if obj.state is new:
        return False
    transition(obj, new)
    return True
