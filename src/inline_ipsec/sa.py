"""`SaSpec`: the one record that describes a security association to any engine.

It is the cold, control-plane description of an SA (what IKE negotiated or what a manual-SA
configuration says). Each engine builds its own hot runtime state from it at install time, so
the data plane never sees IKE and IKE never sees the data plane (docs/design.md §1, §5).
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Optional

from .errors import ConfigError

#: Encryption transforms and the length of their key material in bytes. For the AEAD and
#: counter-mode ciphers the key material is key || 4-byte salt/nonce (RFC 4106 §8.1,
#: RFC 4543 §3.2, RFC 3686 §5.1, RFC 7634 §2).
CIPHER_KEY_MATERIAL: dict[str, int] = {
    "aes-gcm-128": 20,
    "aes-gcm-192": 28,
    "aes-gcm-256": 36,
    "aes-gmac-128": 20,
    "aes-gmac-192": 28,
    "aes-gmac-256": 36,
    "aes-cbc-128": 16,
    "aes-cbc-192": 24,
    "aes-cbc-256": 32,
    "3des-cbc": 24,
    "aes-ctr-128": 20,
    "aes-ctr-192": 28,
    "aes-ctr-256": 36,
    "chacha20-poly1305": 36,
    "null": 0,
}

#: Ciphers that authenticate by themselves (combined-mode, RFC 4303 §3.2.3): no integrity
#: transform may be given with them.
AEAD_CIPHERS = frozenset(
    {"aes-gcm-128", "aes-gcm-192", "aes-gcm-256", "aes-gmac-128", "aes-gmac-192",
     "aes-gmac-256", "chacha20-poly1305"}
)

#: Integrity transforms: name -> (key length, ICV length) in bytes.
INTEGRITY_ALGORITHMS: dict[str, tuple[int, int]] = {
    "hmac-md5-96": (16, 12),
    "hmac-sha1-96": (20, 12),
    "hmac-sha256-128": (32, 16),
    "hmac-sha384-192": (48, 24),
    "hmac-sha512-256": (64, 32),
}

DF_BIT_MODES = ("clear", "set", "copy")
PROTOCOLS = ("esp", "ah")
MODES = ("tunnel", "transport")
NATT_PORT = 4500


@dataclass(frozen=True)
class Lifetime:
    """Soft and hard limits of an SA (RFC 4301 §4.4.2.1). `None` means unlimited.

    Crossing a soft limit raises a "rekey due" event once; crossing a hard limit stops the SA.
    Kilobyte limits count the bytes of protected (inner) payload, as Junos `lifetime-kilobytes`.
    """

    soft_seconds: Optional[float] = None
    hard_seconds: Optional[float] = None
    soft_kilobytes: Optional[int] = None
    hard_kilobytes: Optional[int] = None
    soft_packets: Optional[int] = None
    hard_packets: Optional[int] = None

    @property
    def has_kilobytes(self) -> bool:
        return self.soft_kilobytes is not None or self.hard_kilobytes is not None

    @property
    def is_unlimited(self) -> bool:
        return all(
            v is None
            for v in (self.soft_seconds, self.hard_seconds, self.soft_kilobytes,
                      self.hard_kilobytes, self.soft_packets, self.hard_packets)
        )


@dataclass(frozen=True)
class SaSpec:
    """One direction of an IPsec SA (RFC 4301 §4.4.2), as both engines accept it.

    The same spec installed with `add_outbound` on one engine and `add_inbound` on another
    describes the two ends of one SA: `tunnel_src`/`tunnel_dst` are the outer addresses of the
    packets this SA carries.

    Keys: for AES-GCM, `key` is the RFC 4106 §8.1 key material, the AES key followed by a
    4-byte salt (20 bytes for 128-bit, 36 for 256-bit).
    """

    spi: int
    cipher: str
    key: bytes
    tunnel_src: str
    tunnel_dst: str
    udp_encap: bool = False
    replay_window: int = 64
    esn: bool = False
    integrity: Optional[str] = None
    integrity_key: bytes = b""
    protocol: str = "esp"
    mode: str = "tunnel"
    df_bit: str = "clear"
    copy_outer_dscp: bool = False
    udp_sport: int = NATT_PORT
    udp_dport: int = NATT_PORT
    ttl: int = 64
    lifetime: Lifetime = field(default_factory=Lifetime)

    def __post_init__(self) -> None:
        if not isinstance(self.spi, int) or not 256 <= self.spi <= 0xFFFFFFFF:
            raise ConfigError(
                f"SPI {self.spi!r} is out of range: 0 is invalid and 1..255 are reserved by "
                "IANA (RFC 4303 §2.1); use 256..4294967295"
            )
        if self.protocol not in PROTOCOLS:
            raise ConfigError(f"protocol {self.protocol!r}: expected one of {PROTOCOLS}")
        if self.mode not in MODES:
            raise ConfigError(f"mode {self.mode!r}: expected one of {MODES}")
        if self.protocol == "esp":
            self._check_esp_transforms()
        else:
            self._check_ah_transforms()
        try:
            src = ipaddress.ip_address(self.tunnel_src)
            dst = ipaddress.ip_address(self.tunnel_dst)
        except ValueError as exc:
            raise ConfigError(f"tunnel endpoint is not an IP address: {exc}") from None
        if src.version != dst.version:
            raise ConfigError(
                f"tunnel_src {self.tunnel_src} and tunnel_dst {self.tunnel_dst} are of "
                "different address families"
            )
        if not isinstance(self.replay_window, int) or self.replay_window < 0:
            raise ConfigError(f"replay_window must be 0 (off) or a positive size, "
                              f"not {self.replay_window!r}")
        if self.df_bit not in DF_BIT_MODES:
            raise ConfigError(f"df_bit {self.df_bit!r}: expected one of {DF_BIT_MODES}")
        for name in ("udp_sport", "udp_dport"):
            port = getattr(self, name)
            if not isinstance(port, int) or not 1 <= port <= 65535:
                raise ConfigError(f"{name} {port!r} is not a UDP port (1..65535)")
        if not isinstance(self.ttl, int) or not 1 <= self.ttl <= 255:
            raise ConfigError(f"ttl {self.ttl!r}: expected 1..255")
        if self.udp_encap and self.protocol == "ah":
            raise ConfigError("AH cannot be UDP-encapsulated (RFC 3948 covers ESP only)")

    def _check_esp_transforms(self) -> None:
        if self.cipher not in CIPHER_KEY_MATERIAL:
            raise ConfigError(
                f"unknown cipher {self.cipher!r}; expected one of {sorted(CIPHER_KEY_MATERIAL)}"
            )
        want = CIPHER_KEY_MATERIAL[self.cipher]
        if len(self.key) != want:
            raise ConfigError(
                f"{self.cipher} needs {want} bytes of key material"
                + (" (key followed by a 4-byte salt)" if self.cipher in AEAD_CIPHERS
                   or self.cipher.startswith("aes-ctr") else "")
                + f", got {len(self.key)}"
            )
        if self.cipher in AEAD_CIPHERS:
            if self.integrity is not None:
                raise ConfigError(
                    f"{self.cipher} is a combined-mode cipher: no integrity algorithm may be "
                    "given with it (RFC 4303 §3.2.3)"
                )
        else:
            if self.integrity is None and self.cipher == "null":
                raise ConfigError("NULL encryption needs an integrity algorithm (RFC 4303 §3.2)")
            self._check_integrity()

    def _check_ah_transforms(self) -> None:
        if self.integrity is None:
            raise ConfigError("AH needs an integrity algorithm (RFC 4302 §2.6)")
        self._check_integrity()

    def _check_integrity(self) -> None:
        if self.integrity is None:
            return
        if self.integrity not in INTEGRITY_ALGORITHMS:
            raise ConfigError(
                f"unknown integrity algorithm {self.integrity!r}; expected one of "
                f"{sorted(INTEGRITY_ALGORITHMS)}"
            )
        key_len, _ = INTEGRITY_ALGORITHMS[self.integrity]
        if len(self.integrity_key) != key_len:
            raise ConfigError(
                f"{self.integrity} needs a {key_len}-byte key, got {len(self.integrity_key)}"
            )

    @property
    def outer_ipv6(self) -> bool:
        """True when the outer header is IPv6."""
        return ipaddress.ip_address(self.tunnel_src).version == 6

    def __repr__(self) -> str:  # never print keys
        return (
            f"SaSpec(spi=0x{self.spi:08x}, protocol={self.protocol!r}, cipher={self.cipher!r}, "
            f"integrity={self.integrity!r}, {self.tunnel_src} -> {self.tunnel_dst}, "
            f"udp_encap={self.udp_encap}, replay_window={self.replay_window}, esn={self.esn})"
        )
