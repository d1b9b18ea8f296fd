"""IKE error classes (h11-style local/remote errors, after h11's Local/RemoteProtocolError).

`LocalIkeError` means we (or our configuration) did something illegal; `RemoteIkeError` means the
peer did. Both carry `notify_hint`: the RFC 7296 §3.10.1 notify type to answer the peer with
(INVALID_SYNTAX, NO_PROPOSAL_CHOSEN, AUTHENTICATION_FAILED, ...), or None.

These live in the IKE package until `inline_ipsec.errors` grows an `IkeError` family; then this
module becomes a re-export.
"""
from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass
from typing import Iterator, Optional

from .constants import NotifyType


class IkeError(Exception):
    """Base of all IKE errors. Abstract: raise a subclass."""

    def __init__(self, message: str, notify_hint: Optional[int] = None,
                 notify_data: bytes = b"") -> None:
        super().__init__(message)
        self.notify_hint: Optional[int] = notify_hint
        #: Notification Data to send with the hint (e.g. the DH group of INVALID_KE_PAYLOAD).
        self.notify_data = notify_data


class LocalIkeError(IkeError):
    """Our side (API call or configuration) is at fault."""


class RemoteIkeError(IkeError):
    """The peer sent something invalid; `notify_hint` is the notify to send back (if any)."""


def syntax_error(message: str) -> RemoteIkeError:
    """A malformed or truncated message (RFC 7296 §3.10.1 INVALID_SYNTAX)."""
    return RemoteIkeError(message, NotifyType.INVALID_SYNTAX)


#: Recent failures an `ErrorLog` keeps beside its counters. Anything on the wire can cause one
#: (IKE SPIs are visible, RFC 7296 §2.21: a bad datagram is dropped), so the history is a
#: small ring of short records, never the exception objects with their tracebacks.
ERROR_HISTORY = 16
#: the longest message an `ErrorRecord` keeps (the rest is cut off)
ERROR_MESSAGE_CHARS = 160


@dataclass(frozen=True)
class ErrorRecord:
    """One recent failure: when, the counter it was counted under, what it said, and the
    RFC 7296 §3.10.1 notify it carried or was answered with."""

    at: float
    reason: str
    message: str
    notify_hint: Optional[int] = None

    def __str__(self) -> str:
        return f"{self.reason}: {self.message}"


class ErrorLog:
    """Failures of one IKE SA (or manager): a counter per reason that never forgets, and the
    last `ERROR_HISTORY` failures as `ErrorRecord`s. Iterates, indexes (`log[-1]`) and tests
    false like the list it replaces; its size does not depend on what the peer sends."""

    def __init__(self, history: int = ERROR_HISTORY) -> None:
        self.counts: Counter[str] = Counter()
        self.recent: deque[ErrorRecord] = deque(maxlen=history)

    def add(self, reason: str, error: BaseException | str, now: float) -> ErrorRecord:
        text = str(error)
        if len(text) > ERROR_MESSAGE_CHARS:
            text = text[:ERROR_MESSAGE_CHARS - 3] + "..."
        hint = error.notify_hint if isinstance(error, IkeError) else None
        record = ErrorRecord(now, reason, text, hint)
        self.counts[reason] += 1
        self.recent.append(record)
        return record

    @property
    def total(self) -> int:
        """Every failure counted so far (the history holds at most `ERROR_HISTORY`)."""
        return sum(self.counts.values())

    def __len__(self) -> int:
        return len(self.recent)

    def __iter__(self) -> Iterator[ErrorRecord]:
        return iter(self.recent)

    def __getitem__(self, index: int) -> ErrorRecord:
        return self.recent[index]

    def __repr__(self) -> str:
        return f"ErrorLog({dict(self.counts)!r}, recent={list(self.recent)!r})"
