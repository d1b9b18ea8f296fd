"""IKEv2 (RFC 7296): sans-I/O session and one task per exchange."""
from .session import IkeV2Session

__all__ = ["IkeV2Session"]
