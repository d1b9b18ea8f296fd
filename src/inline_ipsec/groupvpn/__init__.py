"""Group VPN: GDOI (RFC 6407) key server and group members, sans-I/O, on UDP 848.

- `payloads`: the GDOI codec (SA with SA KEK / GAP / SA TEK, Key Download, Sequence Number)
  on top of the IKEv1 ISAKMP codec.
- `pull`: GROUPKEY-PULL under an IKEv1 Phase 1 SA (`GdoiSession`).
- `push`: GROUPKEY-PUSH protection: KEK encryption, RSA signature, sequence numbers.
- `keys`: TEK/KEK <-> payloads; a TEK becomes a `cpu.group.GroupSa`.
- `server.KeyServer`, `member.GroupMember`: the two roles, driven by datagrams and timers.
- `udp`: the asyncio adapters (the only socket code).
- `show`: the Junos `show security group-vpn ...` outputs.

The design, the wire format and the choices RFC 6407 leaves open are in docs/groupvpn.md.
"""
from .config import GroupIpsecSa, MatchPolicy, MemberVpn, ServerGroup
from .constants import GDOI_PORT
from .member import GroupMember
from .server import KeyServer

__all__ = ["GDOI_PORT", "GroupIpsecSa", "GroupMember", "KeyServer", "MatchPolicy",
           "MemberVpn", "ServerGroup"]
