"""Security policy stage benchmarks (pytest-benchmark; figures in `benchmark.extra_info`,
never asserted as times):

- `PolicyTable.match` over 1000 zone-pair policies, for a packet no policy matches (the
  first-match walk over every rule, then the default policy): lookups per second. This is the
  first packet of a flow only; the rest follow its session.
- the gateway's outbound path with and without its policy stage, same configuration
  (tests/data/configs/pair-a.conf: a policy-based tunnel), same packets, same run: packets per
  second of each and their ratio (sessions hit after the first packet of each flow).

    python -m pytest benchmarks/bench_policy.py --benchmark-only
"""
from __future__ import annotations

import ipaddress
import time
from pathlib import Path

from inline_ipsec.config import load_config
from inline_ipsec.gateway import Gateway
from inline_ipsec.gateway.traffic import udp_packet
from inline_ipsec.policy import FiveTuple, PolicyTable

CONFIGS = Path(__file__).parent.parent / "tests" / "data" / "configs"
RULES = 1000
LOOKUPS = 200


def _big_table() -> PolicyTable:
    lines = ["set security zones security-zone a interfaces ge-0/0/0.0",
             "set security zones security-zone b interfaces ge-0/0/1.0"]
    for i in range(RULES):
        pre = f"set security policies from-zone a to-zone b policy p{i} "
        lines += [f"set security address-book global address s{i} 10.{i // 250}.{i % 250}.0/24",
                  pre + f"match source-address s{i}", pre + "match destination-address any",
                  pre + "match application junos-https", pre + "then permit"]
    return PolicyTable(load_config("\n".join(lines) + "\n").firewall)


def test_policy_lookup_worst_case(benchmark) -> None:
    table = _big_table()
    miss = FiveTuple(ipaddress.ip_address("192.0.2.1"), ipaddress.ip_address("198.51.100.1"),
                     17, 1024, 53)

    def batch() -> None:
        for _ in range(LOOKUPS):
            table.match("a", "b", miss)

    assert table.match("a", "b", miss).reason == "default policy"
    benchmark.pedantic(batch, rounds=5, iterations=1, warmup_rounds=1)
    if benchmark.stats is None:  # --benchmark-disable: a smoke run
        return
    rate = LOOKUPS / benchmark.stats.stats.median
    benchmark.extra_info.update(rules=len(table), lookups_per_second=round(rate, 1))
    print(f"\nPolicyTable.match, {len(table)} rules, no match: {rate:,.0f} lookups/s")


def _median_pps(gw: Gateway, packets: list[bytes], rounds: int = 7) -> float:
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(20):
            gw.outbound(packets)
        times.append((time.perf_counter() - t0) / (20 * len(packets)))
    times.sort()
    return 1.0 / times[len(times) // 2]


def test_outbound_with_and_without_policy_stage(benchmark) -> None:
    gw = Gateway.from_file(str(CONFIGS / "pair-a.conf"), name="a")
    packets = [udp_packet("10.1.0.5", "10.2.0.7", bytes(36), sport=40000 + i % 64)
               for i in range(256)]
    assert len(gw.outbound(packets).wire) == len(packets)
    stage = gw.policy

    def once() -> None:
        gw.outbound(packets)

    benchmark.pedantic(once, rounds=5, iterations=1)
    if benchmark.stats is None:
        return
    with_stage = _median_pps(gw, packets)
    gw.policy = None
    without = _median_pps(gw, packets)
    gw.policy = stage
    benchmark.extra_info.update(pps_with_policy=round(with_stage), pps_without=round(without),
                                ratio=round(with_stage / without, 3))
    print(f"\noutbound, policy-based tunnel: {with_stage:,.0f} pps with the policy stage, "
          f"{without:,.0f} without ({with_stage / without:.2f})")
