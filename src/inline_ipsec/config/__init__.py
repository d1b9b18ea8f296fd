"""Configuration (pipeline stage ①): Junos `set` statements -> a validated `Config`.

    config = load_config('''
    set security ike proposal ike-1 authentication-method pre-shared-keys
    ...
    ''')

`load_config` parses every line, then validates every cross reference; if anything is wrong it
raises one `ConfigurationErrors` (a `ConfigError`) listing every problem with its line number in
`.errors`. Nothing is half-applied: either you get a whole `Config` or an exception.
`load_config_file` does the same for a file (UTF-8; a line that is not is an error of that
line) and names the file in its errors: `ConfigurationErrors.report()` prints them as
`FILE:LINE: error: ...`, which is what `inline-ipsec check` and `run` print.

Statements outside the model (a whole device's `system`, `snmp`, `protocols`, ...) and
`deactivate`d ones are no errors: they are listed in `Config.ignored`, and `Config.warning()`
is the one warning line about them that `check` and `run` print.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Union

from .algorithms import cipher_name, integrity_name
from .errors import ConfigIssue, ConfigurationErrors
from .junos import decode, parse
from .firewall import Firewall, Policy, SecurityZone
from .model import (
    DEPLOYMENT_TYPES,
    Config,
    IgnoredStatements,
    DeadPeerDetection,
    Identity,
    IkeGateway,
    IkePolicy,
    IkeProposal,
    IpsecPolicy,
    IpsecProposal,
    IpsecVpn,
    KeyManagerProfile,
    License,
    ManualSa,
    QatSettings,
    St0Unit,
    StaticRoute,
    TrafficSelector,
    VpnIke,
)
from .to_sa import lifetime_of, manual_sa_args, negotiated_sa_args
from .validate import validate

__all__ = [
    "DEPLOYMENT_TYPES",
    "Config",
    "Firewall",
    "IgnoredStatements",
    "Policy",
    "SecurityZone",
    "ConfigIssue",
    "ConfigurationErrors",
    "DeadPeerDetection",
    "Identity",
    "IkeGateway",
    "IkePolicy",
    "IkeProposal",
    "IpsecPolicy",
    "IpsecProposal",
    "IpsecVpn",
    "KeyManagerProfile",
    "License",
    "QatSettings",
    "ManualSa",
    "St0Unit",
    "StaticRoute",
    "TrafficSelector",
    "VpnIke",
    "cipher_name",
    "integrity_name",
    "lifetime_of",
    "load_config",
    "load_config_file",
    "manual_sa_args",
    "negotiated_sa_args",
]


def load_config(text: str, source: Optional[str] = None) -> Config:
    """Parse and validate Junos `set` statements (Junos 25.2R1 syntax, see `junos.py`).

    Raises `ConfigurationErrors` listing every syntax and cross-reference problem; `source`
    (a file name) is what its messages name.
    """
    config, issues = parse(text)
    if not issues:
        issues = validate(config)
    else:
        # Cross references are checked too, except those that point at a stanza whose own
        # line failed to parse (they would only repeat the syntax error).
        bad_lines = {i.line for i in issues}
        issues = issues + [i for i in validate(config) if i.line not in bad_lines]
    if issues:
        raise ConfigurationErrors(issues, source)
    return config


def load_config_file(path: Union[str, "os.PathLike[str]"]) -> Config:
    """`load_config` on a file (UTF-8). `OSError` when it cannot be read; `ConfigurationErrors`
    naming the file, with each line that is not UTF-8 among them."""
    return load_config(decode(Path(path).read_bytes()), source=os.fspath(path))
