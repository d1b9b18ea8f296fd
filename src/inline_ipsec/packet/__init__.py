"""Packet buffers and header helpers shared by the engines."""
from .burst import Burst

__all__ = ["Burst"]
