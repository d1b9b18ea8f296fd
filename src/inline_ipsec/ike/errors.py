"""IKE error classes (h11-style local/remote errors, after h11's Local/RemoteProtocolError).

`LocalIkeError` means we (or our configuration) did something illegal; `RemoteIkeError` means the
peer did. Both carry `notify_hint`: the RFC 7296 §3.10.1 notify type to answer the peer with
(INVALID_SYNTAX, NO_PROPOSAL_CHOSEN, AUTHENTICATION_FAILED, ...), or None.

These live in the IKE package until `inline_ipsec.errors` grows an `IkeError` family; then this
module becomes a re-export.
"""
from __future__ import annotations

from typing import Optional

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
