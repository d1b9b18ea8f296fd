"""inline-ipsec: a working software model of Juniper SRX inline IPsec.

The PFE (`Pfe`) is the modelled ASIC: ESP tunnel mode with AES-GCM in C. The CPU engine
(`CpuEngine`) carries everything else, in Python on `cryptography`. Importing this package
without its compiled `_pfe_core` extension fails: there is no silent pure-Python fallback.
"""
from __future__ import annotations

try:
    import _pfe_core  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised only on a broken install
    raise ImportError(
        "inline_ipsec needs its compiled _pfe_core extension (the modelled PFE), which failed "
        f"to import: {exc}. Reinstall with `pip install .` on a machine with libssl-dev."
    ) from exc

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
from .pfe import Pfe
from .sa import Lifetime, SaSpec

__version__ = "0.1.0"

__all__ = [
    "BackendUnavailableError", "Burst", "CapacityError", "CpuEngine", "ConfigError", "Engine",
    "EngineCounters", "IntegrityError", "IpsecError", "Lifetime", "MalformedPacketError",
    "NotEspError", "Pfe", "ReplayError", "SaCounters", "SaEvent", "SaExpiredError", "SaSpec",
    "SequenceOverflowError", "Status", "UnknownSaError", "UnknownSpiError", "UnsupportedSaError",
    "__version__",
]
