"""Old module paths kept importable after the gateway package was split into stages.

The gateway used to be one package (`inline_ipsec.gateway.*`, plus `inline_ipsec.distribution`).
Its modules now live where a reader of the data flow looks for them: `dataplane/` (forwarding),
`control/` (IKE control, keying, SA distribution) and `io/` (links, sockets, CLI, show, demo).
Code written against the old paths keeps working: importing an old name returns the very same
module object as the new one (so `monkeypatch.setattr` on either name patches both), and
nothing is imported before it is asked for.
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
from types import ModuleType
from typing import Optional, Sequence

__all__ = ["MODULE_ALIASES", "PACKAGE_ALIASES", "install", "resolve"]

_P = "inline_ipsec."

#: old module name -> new module name (one module each)
MODULE_ALIASES: dict[str, str] = {
    _P + "gateway.core": _P + "dataplane.gateway",
    _P + "gateway.routing": _P + "dataplane.routing",
    _P + "gateway.demux": _P + "dataplane.demux",
    _P + "gateway.mtu": _P + "dataplane.mtu",
    _P + "gateway.counters": _P + "dataplane.counters",
    _P + "gateway.ike_control": _P + "control.ike_control",
    _P + "gateway.ike_config": _P + "control.ike_config",
    _P + "gateway.keying": _P + "control.keying",
    _P + "gateway.negotiated": _P + "control.negotiated",
    _P + "gateway.vpn_verdict": _P + "control.vpn_verdict",
    _P + "gateway.link": _P + "io.link",
    _P + "gateway.ike_link": _P + "io.ike_link",
    _P + "gateway.control": _P + "io.control_socket",
    _P + "gateway.runner": _P + "io.runner",
    _P + "gateway.commands": _P + "io.commands",
    _P + "gateway.show": _P + "io.show",
    _P + "gateway.ike_show": _P + "io.ike_show",
    _P + "gateway.inactive": _P + "io.inactive",
    _P + "gateway.demo_config": _P + "io.demo_config",
    _P + "gateway.traffic": _P + "io.traffic",
}

#: old package prefix -> new package prefix (the package and everything below it)
PACKAGE_ALIASES: dict[str, str] = {
    _P + "distribution": _P + "control.distribution",
}


def resolve(fullname: str) -> Optional[str]:
    """The new name of an old module name, or None if `fullname` was never moved."""
    if fullname in MODULE_ALIASES:
        return MODULE_ALIASES[fullname]
    for old, new in PACKAGE_ALIASES.items():
        if fullname == old or fullname.startswith(old + "."):
            return new + fullname[len(old):]
    return None


class _AliasLoader(importlib.abc.Loader):
    """Loads an old name by importing the new one and handing back that same module."""

    def __init__(self, target: str) -> None:
        self._target = target

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return importlib.import_module(self._target)

    def exec_module(self, module: ModuleType) -> None:
        # The import system has just stamped the alias spec onto the shared module; put the
        # real one back so reload(), pickling and `python -m` see the module's true home.
        module.__spec__ = _real_specs[self._target]


_real_specs: dict[str, importlib.machinery.ModuleSpec] = {}


class _AliasFinder(importlib.abc.MetaPathFinder):
    """A meta-path finder that answers only for the moved names."""

    def find_spec(self, fullname: str, path: Optional[Sequence[str]] = None,
                  target: Optional[ModuleType] = None) -> Optional[importlib.machinery.ModuleSpec]:
        new = resolve(fullname)
        if new is None:
            return None
        module = importlib.import_module(new)
        if module.__spec__ is not None:
            _real_specs.setdefault(new, module.__spec__)
        is_package = hasattr(module, "__path__")
        spec = importlib.machinery.ModuleSpec(fullname, _AliasLoader(new), is_package=is_package)
        if is_package:
            spec.submodule_search_locations = list(module.__path__)
        return spec


_FINDER = _AliasFinder()


def install() -> None:
    """Put the alias finder first on `sys.meta_path` (idempotent)."""
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)
