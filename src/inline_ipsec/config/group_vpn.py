"""Junos Group VPNv2 statements: `set security group-vpn server ...` and
`set security group-vpn member ...` (the key server and the group members, RFC 6407).

`junos.py` hands every `set security group-vpn` statement to `GroupVpnBuilder.statement`;
at the end `freeze` checks the cross references (group -> ike-gateway -> ike policy ->
proposals, ipsec-sa -> proposal, vpn -> ike-gateway) with line numbers and returns a frozen
`GroupVpnConfig`, whose `server_groups()` / `member_vpns()` build what `groupvpn` runs.

Supported (docs/junos-formats.md, "Group VPN"):

    set security group-vpn server|member ike proposal <n> authentication-method
            pre-shared-keys|rsa-signatures | dh-group <g> | encryption-algorithm <a>
            | authentication-algorithm <h> | lifetime-seconds <180..86400>
    set security group-vpn server|member ike policy <n> proposals <p>|[ ... ]
            | pre-shared-key ascii-text|hexadecimal <k> | mode main
    set security group-vpn server ike gateway <n> ike-policy <p> | address <ip>|[ ... ]
            | local-address <ip>
    set security group-vpn member ike gateway <n> ike-policy <p> | server-address <ip>
            | local-address <ip>
    set security group-vpn server ipsec proposal <n> authentication-algorithm
            hmac-sha-256-128|hmac-sha1-96 | encryption-algorithm aes-128-cbc|aes-192-cbc|
            aes-256-cbc | lifetime-seconds <180..86400>
    set security group-vpn server group <n> group-id <1..4294967295> | member-threshold
            <1..2000> | ike-gateway <g> | server-address <ip> | anti-replay-time-window
            <1..360> | no-anti-replay | activation-time-delay <0..900> | description <s>
            | ipsec-sa <s> proposal <p> | ipsec-sa <s> match-policy <m> source <pfx>
              | destination <pfx> | source-port <0..65535> | destination-port <0..65535>
              | protocol <0..255>
            | server-member-communication communication-type unicast|multicast
              | encryption-algorithm aes-128-cbc|aes-192-cbc|aes-256-cbc
              | lifetime-seconds <300..86400> | sig-hash-algorithm sha-256|sha-384
              | retransmission-period <2..60> | number-of-retransmission <0..60>
              | certificate <id>
    set security group-vpn member ipsec vpn <n> ike-gateway <g> | group <1..4294967295>
            | group-vpn-external-interface <ifl> | match-direction output
            | recovery-probe | fail-open rule <r> ... | exclude rule <r> ...
            | tunnel-mtu <n> | df-bit clear|set|copy

Statements Junos has but this model does not carry out are parsed and listed in
`unsupported` (with their lines): `check` and `run` print them, nothing is dropped silently.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from .errors import ConfigIssue

IKE_P1_ENCRYPTION = ("aes-128-cbc", "aes-192-cbc", "aes-256-cbc", "3des-cbc")
IKE_P1_HASH = ("sha1", "sha-256", "sha-384")
IKE_AUTH_METHODS = ("pre-shared-keys", "rsa-signatures")
IPSEC_AUTH = ("hmac-sha-256-128", "hmac-sha1-96")
IPSEC_ENC = ("aes-128-cbc", "aes-192-cbc", "aes-256-cbc")


@dataclass(frozen=True)
class GroupVpnConfig:
    """The `security group-vpn` part of a configuration (plain data, with lines)."""

    ike_proposals: dict = field(default_factory=dict)     # (role, name) -> dict
    ike_policies: dict = field(default_factory=dict)
    ike_gateways: dict = field(default_factory=dict)
    ipsec_proposals: dict = field(default_factory=dict)   # name -> dict
    groups: dict = field(default_factory=dict)            # name -> dict
    vpns: dict = field(default_factory=dict)              # name -> dict
    #: (line, statement) of what is parsed but not carried out
    unsupported: tuple = ()

    @property
    def is_server(self) -> bool:
        return bool(self.groups)

    @property
    def is_member(self) -> bool:
        return bool(self.vpns)

    # -- runtime objects -------------------------------------------------------------------
    def _ike(self, role: str, gateway: str, name: str):
        from ..ike.auth import Identity
        from ..ike.v1 import IkeV1Config, Phase1Proposal
        gw = self.ike_gateways[(role, gateway)]
        pol = self.ike_policies[(role, gw["ike_policy"])]
        props = []
        for p in pol.get("proposals", ()):
            d = self.ike_proposals[(role, p)]
            props.append(Phase1Proposal(d.get("authentication_method", "pre-shared-keys"),
                                        d.get("encryption_algorithm", "aes-128-cbc"),
                                        d.get("authentication_algorithm", "sha-256"),
                                        int(d.get("dh_group", "group14")[5:]),
                                        d.get("lifetime_seconds", 3600)))
        psk = pol.get("pre_shared_key")
        return IkeV1Config(proposals=props, mode="main",
                           psk=psk.encode() if isinstance(psk, str) else psk,
                           local_id=Identity.parse(gw.get("local_address") or name),
                           children=[], name=name, natt=False)

    def server_groups(self) -> list:
        """`groupvpn.ServerGroup`s, and the (network, IkeV1Config) the key server accepts."""
        from ..groupvpn.config import GroupIpsecSa, MatchPolicy, ServerGroup
        out = []
        for name, g in self.groups.items():
            sas = []
            for sa_name, sa in g.get("ipsec_sa", {}).items():
                prop = self.ipsec_proposals[sa["proposal"]]
                mp_name, mp = next(iter(sa.get("match_policy", {"any": {}}).items()))
                sas.append(GroupIpsecSa(
                    sa_name, MatchPolicy(mp_name, mp.get("source", "0.0.0.0/0"),
                                         mp.get("destination", "0.0.0.0/0"),
                                         mp.get("protocol", 0), mp.get("source_port", 0),
                                         mp.get("destination_port", 0)),
                    prop.get("encryption_algorithm", "aes-256-cbc"),
                    prop.get("authentication_algorithm", "hmac-sha-256-128"),
                    prop.get("lifetime_seconds", 3600)))
            smc = g.get("server_member_communication", {})
            members = [a for gw in g.get("ike_gateway", ())
                       for a in self.ike_gateways[("server", gw)].get("address", ())]
            window = 0 if g.get("no_anti_replay") else g.get("anti_replay_time_window", 0)
            out.append(ServerGroup(
                name, g["group_id"], sas, members=[f"{a}" for a in members] or ["0.0.0.0/0"],
                member_threshold=g.get("member_threshold", 2000),
                server_address=g.get("server_address", ""),
                kek_encryption=smc.get("encryption_algorithm", "aes-256-cbc"),
                kek_lifetime_seconds=smc.get("lifetime_seconds", 3600),
                sig_hash=smc.get("sig_hash_algorithm", "sha-256"),
                retransmission_period=smc.get("retransmission_period", 10),
                number_of_retransmission=smc.get("number_of_retransmission", 2),
                activation_time_delay=g.get("activation_time_delay", 0),
                anti_replay_time_window=window))
        return out

    def server_ike(self) -> list:
        """(peer network, IkeV1Config) for every server `ike gateway`."""
        out = []
        for (role, name), gw in self.ike_gateways.items():
            if role == "server":
                cfg = self._ike("server", name, name)
                out += [(a, cfg) for a in gw.get("address", ())]
        return out

    def member_vpns(self) -> list:
        """`groupvpn.MemberVpn`s (one per `ipsec vpn`)."""
        from ..groupvpn.config import MemberVpn
        from ..groupvpn.constants import GDOI_PORT
        out = []
        for name, v in self.vpns.items():
            gw = self.ike_gateways[("member", v["ike_gateway"])]
            out.append(MemberVpn(name, v["group"], (gw["server_address"][0], GDOI_PORT),
                                 self._ike("member", v["ike_gateway"], name),
                                 local_address=gw.get("local_address", "")))
        return out


class GroupVpnBuilder:
    """Collects `set security group-vpn` statements while `junos.py` parses."""

    def __init__(self) -> None:
        self.tables: dict[str, dict] = {k: {} for k in (
            "ike_proposals", "ike_policies", "ike_gateways", "ipsec_proposals", "groups",
            "vpns")}
        self.lines: dict[tuple, int] = {}
        self.unsupported: list[tuple[int, str]] = []
        self.any = False

    def _entry(self, table: str, key: Any, line: int) -> dict:
        t = self.tables[table]
        if key not in t:
            t[key] = {}
            self.lines[(table, key)] = line
        return t[key]

    def statement(self, c, line: int) -> None:
        """The rest of one `set security group-vpn ...` statement (cursor after group-vpn)."""
        from .values import _host_or_ip, _ip, _name, _named
        self.any = True
        role = c.keyword(("server", "member"))
        what = c.keyword(("ike", "ipsec") + (("group",) if role == "server" else ()))
        if what == "ike":
            kind = c.keyword(("proposal", "policy", "gateway"))
            name = c.value(_named(f"an IKE {kind} name"), _name)
            f = self._entry(f"ike_{kind}s" if kind != "policy" else "ike_policies",
                            (role, name), line)
            getattr(self, f"_ike_{kind}")(c, f, role, line, _ip, _host_or_ip, _name, _named)
        elif what == "ipsec" and role == "server":
            c.keyword(("proposal",))
            name = c.value(_named("an IPsec proposal name"), _name)
            self._ipsec_proposal(c, self._entry("ipsec_proposals", name, line))
        elif what == "ipsec":
            c.keyword(("vpn",))
            name = c.value(_named("a group VPN name"), _name)
            self._vpn(c, self._entry("vpns", name, line), line, _name, _named)
        else:
            name = c.value(_named("a group name"), _name)
            self._group(c, self._entry("groups", name, line), line, _ip, _name, _named)

    # -- ike -----------------------------------------------------------------------------
    def _ike_proposal(self, c, f, role, line, *_) -> None:
        stmt = c.keyword(("authentication-method", "dh-group", "encryption-algorithm",
                          "authentication-algorithm", "lifetime-seconds"))
        if stmt == "authentication-method":
            f["authentication_method"] = c.keyword(IKE_AUTH_METHODS)
        elif stmt == "dh-group":
            f["dh_group"] = c.keyword(("group2", "group5", "group14", "group15", "group16",
                                       "group19", "group20", "group21", "group24"))
        elif stmt == "encryption-algorithm":
            f["encryption_algorithm"] = c.keyword(IKE_P1_ENCRYPTION)
        elif stmt == "authentication-algorithm":
            f["authentication_algorithm"] = c.keyword(IKE_P1_HASH)
        else:
            f["lifetime_seconds"] = c.integer("seconds", 180, 86400)

    def _ike_policy(self, c, f, role, line, _ip, _host, _name, _named) -> None:
        from .values import _hex_key
        stmt = c.keyword(("proposals", "pre-shared-key", "mode"))
        if stmt == "proposals":
            cur = list(f.get("proposals", ()))
            cur += [p for p in c.values(_named("an IKE proposal name"), _name) if p not in cur]
            f["proposals"] = tuple(cur)
        elif stmt == "pre-shared-key":
            form = c.keyword(("ascii-text", "hexadecimal"))
            f["pre_shared_key"] = c.value("the key as a quoted string") if form == \
                "ascii-text" else c.value("the key as hexadecimal digits", _hex_key)
        else:
            # GDOI registration runs under Main Mode (identity protection)
            f["mode"] = c.keyword(("main",))

    def _ike_gateway(self, c, f, role, line, _ip, _host, _name, _named) -> None:
        stmts = ("ike-policy", "local-address") + (
            ("address",) if role == "server" else ("server-address",))
        stmt = c.keyword(stmts)
        if stmt == "ike-policy":
            f["ike_policy"] = c.value(_named("an IKE policy name"), _name)
            f["ike_policy_line"] = line
        elif stmt == "local-address":
            f["local_address"] = c.value("an IP address", _ip)
        else:
            key = "address" if stmt == "address" else "server_address"
            cur = list(f.get(key, ()))
            cur += [a for a in c.values("an IP address", _ip) if a not in cur]
            f[key] = tuple(cur)

    # -- server --------------------------------------------------------------------------
    def _ipsec_proposal(self, c, f) -> None:
        stmt = c.keyword(("authentication-algorithm", "encryption-algorithm",
                          "lifetime-seconds"))
        if stmt == "authentication-algorithm":
            f["authentication_algorithm"] = c.keyword(IPSEC_AUTH)
        elif stmt == "encryption-algorithm":
            f["encryption_algorithm"] = c.keyword(IPSEC_ENC)
        else:
            f["lifetime_seconds"] = c.integer("seconds", 180, 86400)

    def _group(self, c, f, line, _ip, _name, _named) -> None:
        from .values import _prefix
        stmt = c.keyword(("group-id", "member-threshold", "ike-gateway", "server-address",
                          "anti-replay-time-window", "no-anti-replay",
                          "activation-time-delay", "description", "ipsec-sa",
                          "server-member-communication"))
        if stmt == "group-id":
            f["group_id"] = c.integer("a group ID", 1, 0xFFFFFFFF)
        elif stmt == "member-threshold":
            f["member_threshold"] = c.integer("members", 1, 2000)
        elif stmt == "ike-gateway":
            cur = list(f.get("ike_gateway", ()))
            cur += [g for g in c.values(_named("an IKE gateway name"), _name) if g not in cur]
            f["ike_gateway"] = tuple(cur)
            f.setdefault("ike_gateway_lines", {}).update({g: line for g in cur})
        elif stmt == "server-address":
            f["server_address"] = c.value("an IP address", _ip)
        elif stmt == "anti-replay-time-window":
            f["anti_replay_time_window"] = c.integer("seconds", 1, 360)
        elif stmt == "no-anti-replay":
            f["no_anti_replay"] = True
        elif stmt == "activation-time-delay":
            f["activation_time_delay"] = c.integer("seconds", 0, 900)
        elif stmt == "description":
            f["description"] = c.value("a quoted string")
        elif stmt == "ipsec-sa":
            name = c.value(_named("an ipsec-sa name"), _name)
            sa = f.setdefault("ipsec_sa", {}).setdefault(name, {"line": line})
            if c.keyword(("proposal", "match-policy")) == "proposal":
                sa["proposal"] = c.value(_named("a group IPsec proposal name"), _name)
                sa["proposal_line"] = line
            else:
                mp_name = c.value(_named("a match-policy name"), _name)
                mps = sa.setdefault("match_policy", {})
                if mps and mp_name not in mps:
                    c.fail(f"'{next(iter(mps))}' (one match-policy per ipsec-sa)")
                mp = mps.setdefault(mp_name, {})
                item = c.keyword(("source", "destination", "source-port", "destination-port",
                                  "protocol"))
                if item in ("source", "destination"):
                    mp[item] = c.value("an IP prefix like 10.0.0.0/8", _prefix)
                elif item == "protocol":
                    mp["protocol"] = c.integer("an IP protocol", 0, 255)
                else:
                    mp[item.replace("-", "_")] = c.integer("a port", 0, 65535)
        else:
            smc = f.setdefault("server_member_communication", {})
            item = c.keyword(("communication-type", "encryption-algorithm", "lifetime-seconds",
                              "sig-hash-algorithm", "retransmission-period",
                              "number-of-retransmission", "certificate"))
            if item == "communication-type":
                smc["communication_type"] = kind = c.keyword(("unicast", "multicast"))
                if kind == "multicast":
                    self.unsupported.append((line, "server-member-communication "
                                             "communication-type multicast (pushes are "
                                             "unicast)"))
            elif item == "encryption-algorithm":
                smc["encryption_algorithm"] = c.keyword(IPSEC_ENC)
            elif item == "lifetime-seconds":
                smc["lifetime_seconds"] = c.integer("seconds", 300, 86400)
            elif item == "sig-hash-algorithm":
                smc["sig_hash_algorithm"] = c.keyword(("sha-256", "sha-384"))
            elif item in ("retransmission-period", "number-of-retransmission"):
                smc[item.replace("-", "_")] = c.integer(
                    "seconds" if item == "retransmission-period" else "retransmissions",
                    2 if item == "retransmission-period" else 0, 60)
                self.unsupported.append((line, f"server-member-communication {item} (pushes "
                                         "are not acknowledged, so not retransmitted; a "
                                         "member that misses one registers again)"))
            else:
                smc["certificate"] = c.value(_named("a certificate identifier"), _name)
                self.unsupported.append((line, "server-member-communication certificate "
                                         "(the key server signs pushes with a key of its "
                                         "own)"))

    # -- member --------------------------------------------------------------------------
    def _vpn(self, c, f, line, _name, _named) -> None:
        from .values import _IFL, _ifname, _prefix
        stmt = c.keyword(("ike-gateway", "group", "group-vpn-external-interface",
                          "match-direction", "recovery-probe", "fail-open", "exclude",
                          "tunnel-mtu", "df-bit"))
        if stmt == "ike-gateway":
            f["ike_gateway"] = c.value(_named("an IKE gateway name"), _name)
            f["ike_gateway_line"] = line
        elif stmt == "group":
            f["group"] = c.integer("a group ID", 1, 0xFFFFFFFF)
        elif stmt == "group-vpn-external-interface":
            f["external_interface"] = c.value(_IFL, _ifname)
        elif stmt == "match-direction":
            f["match_direction"] = c.keyword(("output",))
        elif stmt == "recovery-probe":
            f["recovery_probe"] = True
            self.unsupported.append((line, "recovery-probe"))
        elif stmt in ("fail-open", "exclude"):
            c.keyword(("rule",))
            rule = c.value(_named("a rule name"), _name)
            item = c.keyword(("source-address", "destination-address"))
            prefix = c.value("an IP prefix like 10.0.0.0/8", _prefix)
            f.setdefault(stmt.replace("-", "_"), {}).setdefault(rule, {})[item] = prefix
            self.unsupported.append((line, f"{stmt} rule {rule}"))
        elif stmt == "tunnel-mtu":
            f["tunnel_mtu"] = c.integer("bytes", 256, 9192)
            self.unsupported.append((line, "tunnel-mtu"))
        else:
            f["df_bit"] = c.keyword(("clear", "set", "copy"))
            if f["df_bit"] != "clear":
                self.unsupported.append((line, f"df-bit {f['df_bit']} (group SAs clear it)"))

    # -- cross references ----------------------------------------------------------------
    def freeze(self, issues: list[ConfigIssue]) -> Optional[GroupVpnConfig]:
        if not self.any:
            return None
        t = self.tables
        lines = self.lines

        def bad(line: int, msg: str) -> None:
            issues.append(ConfigIssue(line, msg))

        for (role, name), pol in t["ike_policies"].items():
            ln = lines[("ike_policies", (role, name))]
            if not pol.get("proposals"):
                bad(ln, f"group-vpn {role} ike policy {name}: no proposals")
            for p in pol.get("proposals", ()):
                if (role, p) not in t["ike_proposals"]:
                    bad(ln, f"group-vpn {role} ike policy {name}: proposal {p} is not "
                        "defined")
            if not pol.get("pre_shared_key"):
                bad(ln, f"group-vpn {role} ike policy {name}: no pre-shared-key (only "
                    "pre-shared keys are supported for group VPN registration)")
        for (role, p), d in t["ike_proposals"].items():
            if d.get("authentication_method") == "rsa-signatures":
                bad(lines[("ike_proposals", (role, p))],
                    f"group-vpn {role} ike proposal {p}: rsa-signatures needs certificates, "
                    "which group VPN registration here does not load; use pre-shared-keys")
        for (role, name), gw in t["ike_gateways"].items():
            ln = lines[("ike_gateways", (role, name))]
            if (role, gw.get("ike_policy")) not in t["ike_policies"]:
                bad(ln, f"group-vpn {role} ike gateway {name}: ike-policy "
                    f"{gw.get('ike_policy', '(missing)')} is not defined")
            if role == "member" and not gw.get("server_address"):
                bad(ln, f"group-vpn member ike gateway {name}: no server-address")
            if role == "server" and not gw.get("address"):
                bad(ln, f"group-vpn server ike gateway {name}: no address")
        ids: dict[int, str] = {}
        for name, g in t["groups"].items():
            ln = lines[("groups", name)]
            if "group_id" not in g:
                bad(ln, f"group-vpn server group {name}: no group-id")
            elif g["group_id"] in ids:
                bad(ln, f"group-vpn server group {name}: group-id {g['group_id']} is also "
                    f"group {ids[g['group_id']]}'s")
            else:
                ids[g["group_id"]] = name
            if not g.get("ipsec_sa"):
                bad(ln, f"group-vpn server group {name}: no ipsec-sa")
            for sa_name, sa in g.get("ipsec_sa", {}).items():
                if sa.get("proposal") not in t["ipsec_proposals"]:
                    bad(sa["line"], f"group-vpn server group {name} ipsec-sa {sa_name}: "
                        f"proposal {sa.get('proposal', '(missing)')} is not defined")
                for mp in sa.get("match_policy", {}).values():
                    s, d = mp.get("source", "0.0.0.0/0"), mp.get("destination", "0.0.0.0/0")
                    if (":" in s) != (":" in d):
                        bad(sa["line"], f"group-vpn server group {name} ipsec-sa {sa_name}: "
                            "source and destination of different address families")
            for gw in g.get("ike_gateway", ()):
                if ("server", gw) not in t["ike_gateways"]:
                    bad(g["ike_gateway_lines"][gw], f"group-vpn server group {name}: "
                        f"ike-gateway {gw} is not defined")
            if not g.get("ike_gateway"):
                bad(ln, f"group-vpn server group {name}: no ike-gateway (no member could "
                    "register)")
            for sa_name, sa in g.get("ipsec_sa", {}).items():
                prop = t["ipsec_proposals"].get(sa.get("proposal"), {})
                delay = g.get("activation_time_delay", 0)
                if delay and prop.get("lifetime_seconds", 3600) < 10 * delay:
                    bad(sa["line"], f"group-vpn server group {name}: lifetime-seconds of "
                        f"ipsec-sa {sa_name} must be at least 10 x activation-time-delay")
        for name, v in t["vpns"].items():
            ln = lines[("vpns", name)]
            if ("member", v.get("ike_gateway")) not in t["ike_gateways"]:
                bad(ln, f"group-vpn member ipsec vpn {name}: ike-gateway "
                    f"{v.get('ike_gateway', '(missing)')} is not defined")
            if "group" not in v:
                bad(ln, f"group-vpn member ipsec vpn {name}: no group")
        return GroupVpnConfig(
            ike_proposals=dict(t["ike_proposals"]), ike_policies=dict(t["ike_policies"]),
            ike_gateways=dict(t["ike_gateways"]), ipsec_proposals=dict(t["ipsec_proposals"]),
            groups=dict(t["groups"]), vpns=dict(t["vpns"]),
            unsupported=tuple(sorted(self.unsupported)))

