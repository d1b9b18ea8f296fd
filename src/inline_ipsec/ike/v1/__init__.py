"""IKEv1 (RFC 2408 ISAKMP, RFC 2409 IKE), sans-I/O, beside the IKEv2 code.

`IkeV1Session` (one ISAKMP SA: Main or Aggressive Mode, then Quick Modes) and `IkeV1Manager`
(many, dispatched by cookies) have the surface and the events of `IkeV2Session` /
`IkeManager`; `IkeV1Config` with `Phase1Proposal`s configures them, `ChildConfig` (shared with
IKEv2) the IPsec SAs; `VersionDispatch` puts both versions behind one pair of ports and
`udp.create_endpoint` on sockets.

Modules: `isakmp` (codec), `keymat` (RFC 2409 §5 key derivation), `protection` (CBC and
the IV chain), `proposals`, `auth`, `main_mode`, `aggressive_mode`, `quick_mode`,
`informational` (notify, Delete, DPD), `natt`, `fragments`, `session`, `manager`.
"""
from .config import IkeV1Config
from .dispatch import VersionDispatch
from .manager import IkeV1Manager
from .proposals import Phase1Proposal
from .session import IkeV1Session

__all__ = ["IkeV1Config", "IkeV1Manager", "IkeV1Session", "Phase1Proposal", "VersionDispatch"]
