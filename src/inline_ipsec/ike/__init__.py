"""IKE control plane, sans-I/O (docs/design.md §1 stage ②): IKEv2 per RFC 7296.

Use `IkeV2Session` (one IKE SA) or `IkeManager` (many, dispatched by SPI) with an `IkeConfig`;
feed datagrams and timer ticks, collect datagrams and events; `ChildSaUp.to_sa_specs()` gives
the `SaSpec` pair for the data plane. `udp.py` is the only module with sockets.
"""
from .auth import Identity
from .config import ChildConfig, IkeConfig
from .errors import IkeError, LocalIkeError, RemoteIkeError
from .events import (ChildSaDown, ChildSaRekeyed, ChildSaUp, IkeEvent, IkeSaDown, IkeSaRekeyed,
                     IkeSaUp, NegotiatedChildSa)
from .manager import IkeManager
from .states import ChildSaState, IkeSaState, IkeStateError, IkeV1SaState
from .v2.session import IkeV2Session

__all__ = [
    "ChildConfig", "ChildSaDown", "ChildSaRekeyed", "ChildSaState", "ChildSaUp", "Identity",
    "IkeConfig", "IkeError", "IkeEvent", "IkeManager", "IkeSaDown", "IkeSaRekeyed", "IkeSaState",
    "IkeSaUp", "IkeStateError", "IkeV1SaState", "IkeV2Session", "LocalIkeError",
    "NegotiatedChildSa", "RemoteIkeError",
]
