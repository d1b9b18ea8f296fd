"""Property tests of the parser's handling of what the model leaves out: any statement under a
hierarchy outside the model loads (reported on its line, never an error), and `deactivate`
of any prefix of a statement takes exactly that statement out."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inline_ipsec.config import ConfigurationErrors, load_config
from inline_ipsec.config.junos import IGNORED_TOP_LEVEL

WORD = st.from_regex(r"[a-z][a-z0-9\-]{0,10}", fullmatch=True)
VALUE = st.one_of(WORD, st.from_regex(r"[0-9]{1,5}", fullmatch=True),
                  st.from_regex(r"[0-9]{1,3}(\.[0-9]{1,3}){3}/[0-9]{1,2}", fullmatch=True))
BASE = ("set interfaces ge-0/0/0 unit 0 family inet address 192.0.2.1/24\n"
        "set security zones security-zone untrust interfaces ge-0/0/0.0\n")


@settings(max_examples=200, deadline=None)
@given(top=st.sampled_from(sorted(IGNORED_TOP_LEVEL)), rest=st.lists(VALUE, max_size=8))
def test_statement_outside_the_model_loads_with_a_warning(top: str, rest: list[str]) -> None:
    config = load_config(BASE + " ".join(["set", top, *rest]) + "\n")
    warning = config.warning()
    assert warning is not None and f"{top} (line 3)" in warning
    assert config.firewall.zones["untrust"].interfaces == {"ge-0/0/0.0": config.firewall.zones[
        "untrust"].interfaces["ge-0/0/0.0"]}


@settings(max_examples=200, deadline=None)
@given(sub=st.sampled_from(["screen", "nat", "log", "alg", "utm", "idp", "dynamic-address"]),
       rest=st.lists(VALUE, max_size=8))
def test_security_hierarchies_outside_the_model(sub: str, rest: list[str]) -> None:
    config = load_config(BASE + " ".join(["set", "security", sub, *rest]) + "\n")
    assert f"security {sub} (line 3)" in (config.warning() or "")


STATEMENTS = [
    "set security zones security-zone trust interfaces ge-0/0/1.0 host-inbound-traffic "
    "system-services ping",
    "set interfaces ge-0/0/1 unit 0 family inet address 10.1.0.1/24",
    "set security address-book global address lan 10.1.0.0/24",
    "set security policies from-zone trust to-zone untrust policy p match source-address lan",
    "set security policies from-zone trust to-zone untrust policy p match destination-address "
    "any",
    "set security policies from-zone trust to-zone untrust policy p match application any",
    "set security policies from-zone trust to-zone untrust policy p then permit",
]


@settings(max_examples=100, deadline=None)
@given(index=st.integers(0, len(STATEMENTS) - 1), cut=st.integers(2, 14))
def test_deactivate_any_prefix_takes_that_statement_out(index: int, cut: int) -> None:
    tokens = STATEMENTS[index].split()[1:]
    path = tokens[:min(cut, len(tokens))]
    every = BASE.splitlines() + STATEMENTS
    text = "\n".join(every) + "\n"
    kept = [s for s in every if s.split()[1:len(path) + 1] != path]
    try:
        expected = load_config("\n".join(kept) + "\n")
    except ConfigurationErrors as exc:      # e.g. the zones went, the policies name them
        with pytest.raises(ConfigurationErrors) as info:
            load_config(text + "deactivate " + " ".join(path) + "\n")
        assert [e.message for e in info.value.errors] == [e.message for e in exc.errors]
        return
    deactivated = load_config(text + "deactivate " + " ".join(path) + "\n")
    assert deactivated.firewall == expected.firewall
    assert deactivated.interface_addresses == expected.interface_addresses
    hits = [i for i in deactivated.ignored if i.kind == "inactive"]
    assert sum(len(i.lines) for i in hits) == len(every) - len(kept)
