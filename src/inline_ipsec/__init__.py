"""inline-ipsec: a working software model of Juniper SRX inline IPsec.

The PFE (`Pfe`) is the modelled ASIC: ESP tunnel mode with AES-GCM in C. The CPU engine
(`CpuEngine`) carries everything else, in Python on `cryptography`. Only the PFE module
(`inline_ipsec.pfe`, and the gateway built on it) needs the compiled `_pfe_core` extension:
without it the CPU engine still imports and runs, and `Pfe` fails loudly, naming the missing
extension (there is no silent pure-Python fallback for the PFE).
"""
from __future__ import annotations

from . import _aliases

_aliases.install()

from .engine import Engine, EngineCounters, SaCounters, Status
from .errors import (
    BackendUnavailableError,
    CapacityError,
    ConfigError,
    IntegrityError,
    IpsecError,
    MalformedPacketError,
    NotEspError,
    ReplayError,
    SaExpiredError,
    SequenceOverflowError,
    UnknownSaError,
    UnknownSpiError,
    UnsupportedSaError,
)
from .cpu import CpuEngine, SaEvent
from .packet.burst import Burst
from .sa import Lifetime, SaSpec

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    # The PFE is loaded on first use, so that the CPU engine works without _pfe_core.
    if name == "Pfe":
        from .pfe import Pfe
        return Pfe
    raise AttributeError(f"module 'inline_ipsec' has no attribute {name!r}")

__all__ = [
    "BackendUnavailableError", "Burst", "CapacityError", "CpuEngine", "ConfigError", "Engine",
    "EngineCounters", "IntegrityError", "IpsecError", "Lifetime", "MalformedPacketError",
    "NotEspError", "Pfe", "ReplayError", "SaCounters", "SaEvent", "SaExpiredError", "SaSpec",
    "SequenceOverflowError", "Status", "UnknownSaError", "UnknownSpiError", "UnsupportedSaError",
    "__version__",
]
