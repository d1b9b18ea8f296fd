"""Property test: for random zones, address books, applications and policies, the compiled
`PolicyTable` decides every random packet as a direct reading of Junos's rules would (an
independent evaluator here, over the configuration model, with `ipaddress`), on both its paths
(rule by rule, and numpy over the range arrays)."""
from __future__ import annotations

import ipaddress

from hypothesis import given, settings
from hypothesis import strategies as st

from inline_ipsec.config import load_config
from inline_ipsec.config.firewall import Firewall
from inline_ipsec.policy import Action, FiveTuple, PolicyTable

ZONES = ("a", "b", "c")
PREFIXES = ("10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24", "10.1.2.3/32", "192.0.2.0/24",
            "2001:db8::/32", "2001:db8:1::/48")
APPS = ("any", "junos-http", "junos-ping", "junos-dns-udp", "web", "hi-udp")
HOSTS = ("10.1.2.3", "10.1.9.9", "10.200.0.1", "192.0.2.7", "198.51.100.1", "2001:db8::5",
         "2001:db8:1::9", "2001:db9::1")

policy = st.fixed_dictionaries({
    "glob": st.booleans(),
    "fz": st.sampled_from(ZONES), "tz": st.sampled_from(ZONES),
    "src": st.lists(st.sampled_from(("any", "any-ipv4", "any-ipv6", "n0", "n1", "n2", "n3",
                                     "n4", "n5", "n6", "set1")), min_size=1, max_size=2),
    "dst": st.lists(st.sampled_from(("any", "n0", "n1", "n2", "n4", "n5", "set1")),
                    min_size=1, max_size=2),
    "app": st.lists(st.sampled_from(APPS), min_size=1, max_size=2),
    "action": st.sampled_from(("permit", "deny", "reject")),
})


def config_text(policies: list[dict], default: str) -> str:
    lines = [f"set security zones security-zone {z} interfaces ge-0/0/{i}.0"
             for i, z in enumerate(ZONES)]
    lines += [f"set security address-book global address n{i} {p}"
              for i, p in enumerate(PREFIXES)]
    lines += ["set security address-book global address-set set1 address n3",
              "set security address-book global address-set set1 address n4",
              "set applications application web protocol tcp",
              "set applications application web destination-port 8000-8080",
              "set applications application hi-udp protocol udp",
              "set applications application hi-udp source-port 1024-65535",
              f"set security policies default-policy {default}"]
    for n, p in enumerate(policies):
        pre = ("set security policies global policy " if p["glob"] else
               f"set security policies from-zone {p['fz']} to-zone {p['tz']} policy ") + f"p{n} "
        if p["glob"]:
            lines += [pre + f"match from-zone {p['fz']}", pre + f"match to-zone {p['tz']}"]
        lines += [pre + f"match source-address [ {' '.join(p['src'])} ]",
                  pre + f"match destination-address [ {' '.join(p['dst'])} ]",
                  pre + f"match application [ {' '.join(p['app'])} ]",
                  pre + f"then {p['action']}"]
    return "\n".join(lines) + "\n"


def reference(fw: Firewall, fz: str, tz: str, ft: FiveTuple) -> tuple[str, str | None]:
    """Zone-pair policies in order, then global ones, then the default; first match wins."""
    def addr_ok(names, zone, addr) -> bool:
        for n in names:
            for lo, hi in fw.resolve_address(n, zone) or []:
                a, b = ipaddress.ip_address(lo), ipaddress.ip_address(hi)
                if a.version == addr.version and a <= addr <= b:
                    return True
        return False

    def app_ok(names) -> bool:
        for n in names:
            for t in fw.resolve_application(n) or []:
                if t.protocol is not None and t.protocol != ft.protocol:
                    continue
                if (t.source_ports, t.destination_ports) != ((0, 65535), (0, 65535)):
                    if ft.sport is None or not (
                            t.source_ports[0] <= ft.sport <= t.source_ports[1]
                            and t.destination_ports[0] <= ft.dport <= t.destination_ports[1]):
                        continue
                if t.icmp_type is not None and t.icmp_type != ft.icmp_type:
                    continue
                return True
        return False

    zone_pair = [p for p in fw.policies if not p.global_policy
                 and p.from_zones == (fz,) and p.to_zones == (tz,)]
    glob = [p for p in fw.policies if p.global_policy
            and (not p.from_zones or fz in p.from_zones)
            and (not p.to_zones or tz in p.to_zones)]
    for p in zone_pair + glob:
        z_from = fz if not p.global_policy else (fz if len(p.from_zones) == 1 else None)
        z_to = tz if not p.global_policy else (tz if len(p.to_zones) == 1 else None)
        if addr_ok(p.source_addresses, z_from, ft.src) and \
                addr_ok(p.destination_addresses, z_to, ft.dst) and app_ok(p.applications):
            return p.action or "deny", p.name
    return ("permit" if fw.default_policy == "permit-all" else "deny"), None


@settings(max_examples=150, deadline=None)
@given(policies=st.lists(policy, max_size=6),
       default=st.sampled_from(("permit-all", "deny-all")),
       packets=st.lists(st.tuples(st.sampled_from(ZONES), st.sampled_from(ZONES),
                                  st.sampled_from(HOSTS), st.sampled_from(HOSTS),
                                  st.sampled_from((1, 6, 17, 58)),
                                  st.sampled_from((53, 80, 8080, 443, 9000)),
                                  st.sampled_from((500, 1024, 40000)),
                                  st.sampled_from((0, 8, 128))), min_size=1, max_size=12))
def test_table_decides_as_the_rules_read(policies, default, packets) -> None:
    fw = load_config(config_text(policies, default)).firewall
    table = PolicyTable(fw)
    vector = PolicyTable(fw)
    vector.VECTOR_MIN = 0          # the numpy path for every zone pair
    for fz, tz, s, d, proto, dport, sport, icmp in packets:
        src, dst = ipaddress.ip_address(s), ipaddress.ip_address(d)
        if src.version != dst.version:
            continue
        ports = proto in (6, 17)
        ft = FiveTuple(src, dst, proto, sport if ports else None, dport if ports else None,
                       None if ports else icmp)
        action, name = reference(fw, fz, tz, ft)
        got = table.match(fz, tz, ft)
        assert (got.action.name.lower(), got.policy) == (action, name), (fz, tz, ft)
        fast = vector.match(fz, tz, ft)
        assert (fast.action, fast.policy, fast.index) == (got.action, got.policy, got.index)
        assert got.action != Action.PERMIT or action == "permit"
