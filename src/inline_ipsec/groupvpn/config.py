"""Group VPN settings as the key server and the members use them (Junos Group VPNv2
`security group-vpn server group ...` and `security group-vpn member ipsec vpn ...`), free of
the Junos syntax (config/group_vpn.py parses that into these)."""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Optional, Sequence

from ..errors import ConfigError
from ..ike.v1.config import IkeV1Config

#: Junos group VPN IPsec proposal encryption -> our cipher names
ENCRYPTION = {"aes-128-cbc": "aes-cbc-128", "aes-192-cbc": "aes-cbc-192",
              "aes-256-cbc": "aes-cbc-256"}
#: Junos group VPN IPsec proposal authentication -> our integrity names
AUTHENTICATION = {"hmac-sha1-96": "hmac-sha1-96", "hmac-sha-256-128": "hmac-sha256-128"}
KEK_ENCRYPTION = {"aes-128-cbc": 16, "aes-192-cbc": 24, "aes-256-cbc": 32}
SIG_HASHES = ("sha-256", "sha-384")


@dataclass(frozen=True)
class MatchPolicy:
    """`ipsec-sa NAME match-policy NAME`: the traffic one TEK protects."""

    name: str = "any"
    source: str = "0.0.0.0/0"
    destination: str = "0.0.0.0/0"
    protocol: int = 0
    source_port: int = 0
    destination_port: int = 0

    def __post_init__(self) -> None:
        try:
            s = ipaddress.ip_network(self.source, strict=False)
            d = ipaddress.ip_network(self.destination, strict=False)
        except ValueError as exc:
            raise ConfigError(f"match-policy {self.name}: {exc}") from None
        if s.version != d.version:
            raise ConfigError(f"match-policy {self.name}: source and destination are of "
                              "different address families")
        if not 0 <= self.protocol <= 255:
            raise ConfigError(f"match-policy {self.name}: protocol {self.protocol}")
        for p in (self.source_port, self.destination_port):
            if not 0 <= p <= 65535:
                raise ConfigError(f"match-policy {self.name}: port {p}")


@dataclass(frozen=True)
class GroupIpsecSa:
    """`ipsec-sa NAME`: one TEK (proposal + match policy)."""

    name: str
    match: MatchPolicy
    encryption: str = "aes-256-cbc"
    authentication: str = "hmac-sha-256-128"
    lifetime_seconds: int = 3600

    def __post_init__(self) -> None:
        if self.encryption not in ENCRYPTION:
            raise ConfigError(f"ipsec-sa {self.name}: encryption {self.encryption} is not "
                              f"one of {sorted(ENCRYPTION)}")
        if self.authentication not in AUTHENTICATION:
            raise ConfigError(f"ipsec-sa {self.name}: authentication {self.authentication} "
                              f"is not one of {sorted(AUTHENTICATION)}")
        if not 180 <= self.lifetime_seconds <= 86400:
            raise ConfigError(f"ipsec-sa {self.name}: lifetime-seconds "
                              f"{self.lifetime_seconds} outside 180..86400")


@dataclass(frozen=True)
class ServerGroup:
    """`security group-vpn server group NAME`."""

    name: str
    group_id: int
    ipsec_sas: Sequence[GroupIpsecSa]
    #: addresses (networks) of the members allowed to register (the `ike-gateway`s' addresses)
    members: Sequence[str] = ("0.0.0.0/0",)
    member_threshold: int = 2000
    server_address: str = ""
    #: server-member-communication
    kek_encryption: str = "aes-256-cbc"
    kek_lifetime_seconds: int = 3600
    sig_hash: str = "sha-256"
    retransmission_period: float = 10.0
    number_of_retransmission: int = 2
    #: seconds before members send with a pushed TEK (GAP ACTIVATION_TIME_DELAY)
    activation_time_delay: int = 0
    #: 0: anti-replay off (`no-anti-replay`); else `anti-replay-time-window` seconds
    anti_replay_time_window: int = 0
    #: rekey a TEK this many seconds before it expires
    rekey_margin: Optional[float] = None

    def __post_init__(self) -> None:
        if not 1 <= self.group_id <= 0xFFFFFFFF:
            raise ConfigError(f"group {self.name}: group-id {self.group_id} out of range")
        if not self.ipsec_sas:
            raise ConfigError(f"group {self.name}: no ipsec-sa (nothing to distribute)")
        if self.kek_encryption not in KEK_ENCRYPTION:
            raise ConfigError(f"group {self.name}: server-member-communication "
                              f"encryption-algorithm {self.kek_encryption}")
        if self.sig_hash not in SIG_HASHES:
            raise ConfigError(f"group {self.name}: sig-hash-algorithm {self.sig_hash}")
        if not 1 <= self.member_threshold <= 100000:
            raise ConfigError(f"group {self.name}: member-threshold {self.member_threshold}")

    @property
    def margin(self) -> float:
        """Seconds before a TEK expires that the key server pushes its successor: room for
        the activation delay (twice it, as Junos waits) and a retry, at most half the
        shortest lifetime (so a rekey never follows a rekey)."""
        shortest = min(s.lifetime_seconds for s in self.ipsec_sas)
        want = self.rekey_margin if self.rekey_margin is not None else \
            max(2.0 * self.activation_time_delay + 10.0, 0.1 * shortest)
        return min(want, 0.5 * shortest)

    @property
    def kek_margin(self) -> float:
        """Seconds before a member's KEK expires that it is replaced by a push."""
        return min(max(10.0, 0.1 * self.kek_lifetime_seconds), 0.5 * self.kek_lifetime_seconds)


@dataclass
class MemberVpn:
    """`security group-vpn member ipsec vpn NAME`: which group to join at which server."""

    name: str
    group_id: int
    server: tuple[str, int]
    ike: IkeV1Config
    local_address: str = ""
    #: re-register this many seconds before the KEK or the newest TEK would expire without
    #: a push having replaced it (less than any key server margin: a push comes first)
    reregister_margin: float = 5.0
    extra: dict = field(default_factory=dict)
