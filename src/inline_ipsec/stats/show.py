"""Show commands as pure functions: snapshot dataclasses in, Junos 25.x text out.

This file owns the text formats of docs/junos-formats.md §4 (device output captured on Junos 25.2R1 SRX4700
and Junos 25.x MX): nothing here reads an engine, a clock or a socket, so the gateway builds the
snapshots and golden-text tests pin the output.

    show security ipsec security-associations            -> render_ipsec_sa_summary
    show security ipsec security-associations detail     -> render_ipsec_sa_detail
    show security ipsec statistics                       -> render_ipsec_statistics
    show security flow statistics                        -> render_flow_statistics
    show security ike security-associations              -> render_ike_sa_summary
    show security ike security-associations detail       -> render_ike_sa_detail
    inline-ipsec check FILE (per-VPN offload verdict)    -> render_offload_check

Where the device output does not say (a tunnel that is not offloaded), we print one
`Offload failure reason: ...` line per failing Table 1 rule under `Hardware Offloaded: No`.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, Mapping, Optional, Sequence

from .catalogue import SHOW
from .counters import FlowStatistics, IpsecStatistics

if TYPE_CHECKING:  # pragma: no cover
    from ..control.distribution.placement import Placement

__all__ = [
    "IkeSaDetail",
    "IkeSaRecord",
    "SaSnapshot",
    "TunnelSnapshot",
    "algorithm_field",
    "proxy_identity",
    "render_flow_statistics",
    "render_ike_sa_detail",
    "render_ike_sa_summary",
    "render_ipsec_sa_detail",
    "render_ipsec_sa_summary",
    "render_ipsec_statistics",
    "render_offload_check",
]

#: `SaSpec.integrity` -> the auth half of the summary's Algorithm column.
_SUMMARY_AUTH = {
    "hmac-md5-96": "md5",
    "hmac-sha1-96": "sha1",
    "hmac-sha256-128": "sha256",
    "hmac-sha384-192": "sha384",
    "hmac-sha512-256": "sha512",
}

#: `SaSpec.cipher` -> (detail `Encryption:` name, key bits).
_DETAIL_CIPHER = {
    "aes-gcm-128": ("aes-gcm", 128), "aes-gcm-192": ("aes-gcm", 192),
    "aes-gcm-256": ("aes-gcm", 256),
    "aes-gmac-128": ("aes-gmac", 128), "aes-gmac-192": ("aes-gmac", 192),
    "aes-gmac-256": ("aes-gmac", 256),
    "aes-cbc-128": ("aes-cbc", 128), "aes-cbc-192": ("aes-cbc", 192),
    "aes-cbc-256": ("aes-cbc", 256),
    "aes-ctr-128": ("aes-ctr", 128), "aes-ctr-192": ("aes-ctr", 192),
    "aes-ctr-256": ("aes-ctr", 256),
    "3des-cbc": ("3des-cbc", 192),
    "chacha20-poly1305": ("chacha20-poly1305", 256),
}


@dataclass(frozen=True)
class SaSnapshot:
    """One direction of one SA at the time of the show command.

    `cipher`/`integrity` use `SaSpec` names. Lifetimes are the seconds left (None: no such
    limit); `lifesize_remaining_kb` None means Unlimited. `replay_window` 0 means anti-replay
    is off.
    """

    direction: str
    spi: int
    protocol: str = "esp"
    cipher: str = "aes-gcm-256"
    integrity: Optional[str] = None
    hard_lifetime_remaining: Optional[int] = None
    soft_lifetime_remaining: Optional[int] = None
    lifesize_remaining_kb: Optional[int] = None
    replay_window: int = 64
    esn: bool = False
    mode: str = "tunnel"
    sa_type: str = "dynamic"
    state: str = "installed"
    aux_spi: int = 0
    vpn_monitoring: str = "-"


@dataclass(frozen=True)
class TunnelSnapshot:
    """One tunnel (IPsec VPN) at the time of the show command; `sas` in display order
    (inbound before outbound for each pair). `events` are rendered event lines
    (`TunnelEvent.render()`)."""

    tunnel_id: int
    vpn_name: str
    local_gateway: str
    remote_gateway: str
    sas: tuple[SaSnapshot, ...]
    hardware_offloaded: bool = False
    offload_reasons: tuple[str, ...] = ()
    local_identity: str = "ipv4(0.0.0.0-255.255.255.255)"
    remote_identity: str = "ipv4(0.0.0.0-255.255.255.255)"
    ts_type: str = "proxy-id"
    ike_version: str = "IKEv2"
    quantum_secured: bool = False
    pfs_group: Optional[int] = None
    udp_encap: bool = False
    dest_port: int = 0
    passive_mode: bool = False
    df_bit: str = "clear"
    copy_outer_dscp: bool = False
    bind_interface: str = ""
    policy_name: str = ""
    port: int = 500
    negotiations: int = 0
    failures: int = 0
    deferred_deletes: int = 0
    flag: int = 0
    events: tuple[str, ...] = ()
    location: str = "FPC 0, PIC 0"
    anchorship: Optional[str] = None
    crypto_backend: Optional[str] = None    # the PFE's crypto library (a model extension)
    distribution_profile: str = "default-profile"
    tunnel_establishment: str = "establish-tunnels-immediately"
    ike_sa_index: int = 0
    virtual_system: str = "root"
    monitoring: str = "-"


@dataclass(frozen=True)
class IkeSaRecord:
    """One row of `show security ike security-associations` (docs/junos-formats.md §4.3). Cookies are the
    IKE SA SPIs (RFC 7296 §3.1), printed as 16 hex digits; `mode` is "IKEv2", "Main" or
    "Aggressive"."""

    index: int
    state: str
    initiator_cookie: int
    responder_cookie: int
    mode: str
    remote_address: str


def proxy_identity(prefix: str = "0.0.0.0/0") -> str:
    """A traffic selector as the detail output prints it: `ipv4(0.0.0.0-255.255.255.255)`."""
    net = ipaddress.ip_network(prefix, strict=False)
    family = "ipv4" if net.version == 4 else "ipv6"
    return f"{family}({net.network_address}-{net.broadcast_address})"


def algorithm_field(sa: SaSnapshot, style: str = "iked") -> str:
    """The summary's Algorithm column: `ESP:aes-gcm-256/aes256-gcm`, `ESP:aes-cbc-256/sha256`,
    `AH:none/sha256` (Junos 25.x spelling; 24.4 printed `None` for the GCM auth half)."""
    proto = sa.protocol.upper()
    if sa.protocol == "ah":
        return f"AH:none/{_SUMMARY_AUTH.get(sa.integrity or '', 'none')}"
    enc = "none" if sa.cipher == "null" else sa.cipher
    if sa.integrity is not None:
        auth = _SUMMARY_AUTH.get(sa.integrity, sa.integrity)
    else:
        auth = "None" if style == "kmd" else _aead_auth(sa.cipher)
    return f"{proto}:{enc}/{auth}"


def _aead_auth(cipher: str) -> str:
    """`aes-gcm-256` -> `aes256-gcm` (what 25.x prints as the authentication of an AEAD)."""
    if cipher.startswith(("aes-gcm-", "aes-gmac-")):
        _, mode, bits = cipher.split("-")
        return f"aes{bits}-{mode}"
    return cipher if cipher != "null" else "none"


def _life(sa: SaSnapshot) -> str:
    """`Life:sec/kb`: Junos right-aligns the kilobytes so the field is 11 characters wide
    (`5044/ unlim`, `21727/unlim`, tests/data/junos/)."""
    secs = "-" if sa.hard_lifetime_remaining is None else str(sa.hard_lifetime_remaining)
    if sa.lifesize_remaining_kb is not None:
        return f"{secs}/{sa.lifesize_remaining_kb}"
    if sa.hard_lifetime_remaining is None:
        return "-/ unlim"
    return f"{secs}/{'unlim':>{max(5, 10 - len(secs))}}"


def render_ipsec_sa_summary(tunnels: Sequence[TunnelSnapshot], style: str = "iked") -> str:
    """`show security ipsec security-associations` (docs/junos-formats.md §4.1): `<` inbound,
    `>` outbound, one ID per pair; "Total IPsec sas" counts SA pairs. `style` "iked" is what
    the iked IKE daemon prints (SRX4700, vSRX with junos-ike, MX: SPI with `0x`, GCM
    authentication `aes256-gcm`, "IPsec"); "kmd" the older kmd daemon (no `0x`, `None`,
    "Ipsec"), as the captures in tests/data/junos/ show."""
    pairs = sum(sum(1 for sa in t.sas if sa.direction == "inbound") for t in tunnels)
    kmd = style == "kmd"
    lines = [
        f"  Total active tunnels: {len(tunnels)}     Total {'Ipsec' if kmd else 'IPsec'} sas: "
        f"{pairs}",
        f"  ID{'    ' if kmd else '      '}Algorithm       SPI      Life:sec/kb  Mon lsys Port  "
        "Gateway",
    ]
    for t in tunnels:
        for sa in t.sas:
            arrow = "<" if sa.direction == "inbound" else ">"
            spi = f"{sa.spi:08x}" if kmd else f"0x{sa.spi:08x}"
            lines.append(
                f"  {arrow}{t.tunnel_id} {algorithm_field(sa, style)} {spi} {_life(sa)} "
                f"{t.monitoring} {t.virtual_system} {t.port} {t.remote_gateway}")
    return "\n".join(lines) + "\n"


def _enabled(flag: bool) -> str:
    return "Enabled" if flag else "Disabled"


def _expires(seconds: Optional[int]) -> str:
    if seconds is None:
        return "Unlimited"
    if seconds <= 0:
        return "Expired"
    return f"Expires in {seconds} seconds"


def _sa_detail(t: TunnelSnapshot, sa: SaSnapshot) -> list[str]:
    lifesize = ("Unlimited" if sa.lifesize_remaining_kb is None
                else f"{sa.lifesize_remaining_kb} kilobytes")
    if sa.protocol == "ah":
        auth, enc = sa.integrity or "None", "None"
    else:
        auth = sa.integrity if sa.integrity is not None else _aead_auth(sa.cipher)
        if sa.cipher == "null":
            enc = "None"
        else:
            name, bits = _DETAIL_CIPHER.get(sa.cipher, (sa.cipher, 0))
            enc = f"{name} ({bits} bits)"
    replay = ("counter-based enabled, Replay window size: " f"{sa.replay_window}"
              if sa.replay_window else "disabled")
    return [
        f"  Direction: {sa.direction}, SPI: 0x{sa.spi:08x}, AUX-SPI: {sa.aux_spi}",
        f"                              , VPN Monitoring: {sa.vpn_monitoring}",
        f"    Hard lifetime: {_expires(sa.hard_lifetime_remaining)}",
        f"    Lifesize Remaining:  {lifesize}",
        f"    Soft lifetime: {_expires(sa.soft_lifetime_remaining)}",
        f"    Mode: {sa.mode.capitalize()}(0 0), Type: {sa.sa_type}, State: {sa.state}",
        f"    Protocol: {sa.protocol.upper()}, Authentication: {auth}, Encryption: {enc}",
        f"    Anti-replay service: {replay}",
        f"    Extended-Sequence-Number: {_enabled(sa.esn)}",
        f"    tunnel-establishment: {t.tunnel_establishment}",
        f"    IKE SA Index: {t.ike_sa_index}",
    ]


def _offload_lines(offloaded: bool, reasons: Iterable[str], indent: str) -> list[str]:
    lines = [f"{indent}Hardware Offloaded: {'Yes' if offloaded else 'No'}"]
    if not offloaded:
        lines += [f"{indent}  Offload failure reason: {r}" for r in reasons]
    return lines


def render_ipsec_sa_detail(tunnels: Sequence[TunnelSnapshot]) -> str:
    """`show security ipsec security-associations detail` (SRX4700 25.2R1, docs/junos-formats.md §4.2)."""
    lines: list[str] = []
    for t in tunnels:
        pfs = f"DH-group-{t.pfs_group}" if t.pfs_group else "N/A"
        lines += [
            f"ID: {t.tunnel_id} Virtual-system: {t.virtual_system}, VPN Name: {t.vpn_name}",
            f"  Local Gateway: {t.local_gateway}, Remote Gateway: {t.remote_gateway}",
            f"  Local Identity: {t.local_identity}",
            f"  Remote Identity: {t.remote_identity}",
            f"  TS Type: {t.ts_type}",
            f"  Version: {t.ike_version}",
            f"  Quantum Secured: {'Yes' if t.quantum_secured else 'No'}",
            *_offload_lines(t.hardware_offloaded, t.offload_reasons, "  "),
            f"  PFS group: {pfs}, Packet Encapsulation: {'UDP' if t.udp_encap else 'None'}, "
            f"Dest port: {t.dest_port}",
            f"  Passive mode tunneling: {_enabled(t.passive_mode)}",
            f"  DF-bit: {t.df_bit}, Copy-Outer-DSCP: {_enabled(t.copy_outer_dscp)}, "
            f"Bind-interface: {t.bind_interface or 'None'}, Policy-name: {t.policy_name}",
            f"  Port: {t.port}, Nego#: {t.negotiations}, Fail#: {t.failures}, "
            f"Def-Del#: {t.deferred_deletes} Flag: {t.flag}",
            "  Tunnel events:",
            *[f"    {e}" for e in t.events],
            f"  Location: {t.location}",
        ]
        if t.anchorship is not None:
            lines.append(f"  Anchorship: {t.anchorship}")
        if t.crypto_backend is not None:
            lines.append(f"  Crypto backend: {t.crypto_backend}")
        lines.append(f"  Distribution-Profile: {t.distribution_profile}")
        for sa in t.sas:
            lines += _sa_detail(t, sa)
    return "\n".join(lines) + ("\n" if lines else "")


def _render_statistics(command: str, stats: object, platform: str = "srx") -> str:
    """A statistics command as the catalogue lays it out (`stats.catalogue.SHOW`): headings,
    "column" rows with the value right-aligned to column 33, "inline" rows of `Label: value`
    pairs; `srx_only` rows are left out on the MX."""
    show = SHOW[command]
    out = []
    for row in show.rows:
        if row.srx_only and platform == "mx":
            continue
        if row.heading:
            out.append(row.heading)
            continue
        pairs = [(show.line(key).label + ":", getattr(stats, key)) for key in row.keys]
        if row.style == "column":
            (label, value), = pairs
            width = max(33 - len(label), len(str(value)) + 1)
            out.append(f"{show.indent}{label}{value:>{width}}")
        else:
            out.append(show.indent + ", ".join(f"{label} {value}" for label, value in pairs))
    return "\n".join(out) + "\n"


def render_ipsec_statistics(stats: IpsecStatistics, platform: str = "srx") -> str:
    """`show security ipsec statistics` (SRX4700 25.2, docs/junos-formats.md §4.5). `platform="mx"` prints
    only the first three error lines, as the MX does."""
    return _render_statistics("ipsec", stats, platform)


def render_flow_statistics(stats: FlowStatistics) -> str:
    """`show security flow statistics` (docs/junos-formats.md §4.6)."""
    return _render_statistics("flow", stats)


#: Column starts of `show security ike security-associations` (docs/junos-formats.md §4.3).
_IKE_COLUMNS = (0, 8, 15, 33, 51, 66)


def _columns(values: Sequence[str], starts: Sequence[int]) -> str:
    line = ""
    for i, value in enumerate(values):
        start = starts[i]
        if line:
            line += " " * max(1, start - len(line))
        line += value
    return line


def render_ike_sa_summary(records: Sequence[IkeSaRecord]) -> str:
    """`show security ike security-associations` (docs/junos-formats.md §4.3): fixed columns; a value too
    wide for its column pushes the next one right by one space, as the device does."""
    header = ("Index", "State", "Initiator cookie", "Responder cookie", "Mode",
              "Remote Address")
    lines = [_columns(header, _IKE_COLUMNS)]
    for r in records:
        lines.append(_columns(
            (str(r.index), r.state, f"{r.initiator_cookie:016x}", f"{r.responder_cookie:016x}",
             r.mode, r.remote_address), _IKE_COLUMNS))
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class IkeSaDetail:
    """One IKE SA for `show security ike security-associations detail` (docs/junos-formats.md §4.4).
    Algorithm fields are printed as given (`hmac-sha1-96`, `aes256-cbc`, `hmac-sha1`,
    `DH-group-2`); `lifetime_remaining` in seconds."""

    remote_address: str
    index: int
    gateway_name: str
    role: str
    state: str
    initiator_cookie: int
    responder_cookie: int
    exchange_type: str
    authentication_method: str
    local_address: str
    local_port: int = 500
    remote_port: int = 500
    lifetime_remaining: int = 0
    reauth_lifetime: Optional[int] = None
    fragmentation: bool = False
    fragmentation_size: int = 0
    remote_access_client: str = "Unknown Client"
    peer_ike_id: str = ""
    aaa_assigned_ip: str = "0.0.0.0"
    authentication: str = ""
    encryption: str = ""
    prf: str = ""
    dh_group: str = ""
    input_bytes: int = 0
    output_bytes: int = 0
    input_packets: int = 0
    output_packets: int = 0
    input_fragmented_packets: int = 0
    output_fragmented_packets: int = 0
    ipsec_sas_created: int = 0
    ipsec_sas_deleted: int = 0
    phase2_in_progress: int = 0


def _ike_stat(label: str, value: int) -> str:
    return f"  {label}:{value:>{max(36 - len(label) - 1, len(str(value)) + 1)}}"


def render_ike_sa_detail(records: Sequence[IkeSaDetail]) -> str:
    """`show security ike security-associations detail` (docs/junos-formats.md §4.4; the sample's spacing
    was normalised by its source, we keep it). Blocks are separated by a blank line."""
    blocks = []
    for r in records:
        reauth = "Disabled" if r.reauth_lifetime is None else \
            f"Expires in {r.reauth_lifetime} seconds"
        lines = [
            f"IKE peer {r.remote_address}, Index {r.index}, Gateway Name: {r.gateway_name}",
            f" Role: {r.role}, State: {r.state}",
            f" Initiator cookie: {r.initiator_cookie:016x}, "
            f"Responder cookie: {r.responder_cookie:016x}",
            f" Exchange type: {r.exchange_type}, "
            f"Authentication method: {r.authentication_method}",
            f" Local: {r.local_address}:{r.local_port}, "
            f"Remote: {r.remote_address}:{r.remote_port}",
            f" Lifetime: {_expires(r.lifetime_remaining)}",
            f" Reauth Lifetime: {reauth}",
            f" IKE Fragmentation: {_enabled(r.fragmentation)}, Size: {r.fragmentation_size}",
            f" Remote Access Client Info: {r.remote_access_client}",
            f" Peer ike-id: {r.peer_ike_id or r.remote_address}",
            f" AAA assigned IP: {r.aaa_assigned_ip}",
            " Algorithms:",
            f"  Authentication        : {r.authentication}",
            f"  Encryption            : {r.encryption}",
            f"  Pseudo random function: {r.prf}",
            f"  Diffie-Hellman group  : {r.dh_group}",
            " Traffic statistics:",
            _ike_stat("Input  bytes  ", r.input_bytes),
            _ike_stat("Output bytes  ", r.output_bytes),
            _ike_stat("Input  packets", r.input_packets),
            _ike_stat("Output packets", r.output_packets),
            _ike_stat("Input  fragmentated packets", r.input_fragmented_packets),
            _ike_stat("Output fragmentated packets", r.output_fragmented_packets),
            f" IPSec security associations: {r.ipsec_sas_created} created, "
            f"{r.ipsec_sas_deleted} deleted",
            f" Phase 2 negotiations in progress: {r.phase2_in_progress}",
        ]
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)


def render_offload_check(placements: Mapping[str, "Placement"]) -> str:
    """`inline-ipsec check FILE`: per VPN, `Hardware Offloaded: Yes|No` and the reasons
    (`control.distribution.Placement`)."""
    lines: list[str] = []
    for vpn, p in placements.items():
        lines.append(f"VPN Name: {vpn}")
        lines += _offload_lines(p.offloaded, p.reasons, "  ")
    return "\n".join(lines) + ("\n" if lines else "")
