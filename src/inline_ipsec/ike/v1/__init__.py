"""IKEv1 (RFC 2408 ISAKMP, RFC 2409 IKE), sans-I/O, beside the IKEv2 code.

`IkeV1Session` (one ISAKMP SA: Main or Aggressive Mode, then Quick Modes) and `IkeV1Manager`
(many, dispatched by cookies) have the surface and the events of `IkeV2Session` /
`IkeManager`; `IkeV1Config` with `Phase1Proposal`s configures them, `ChildConfig` (shared with
IKEv2) the IPsec SAs.
"""
from .config import IkeV1Config
from .proposals import Phase1Proposal
from .session import IkeV1Session

__all__ = ["IkeV1Config", "IkeV1Session", "Phase1Proposal"]
