"""The gateway's stage packages, and its old module paths still importing as the same modules."""
from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from inline_ipsec import _aliases


@pytest.mark.parametrize("old,new", sorted(_aliases.MODULE_ALIASES.items()))
def test_old_module_path_is_the_new_module(old: str, new: str) -> None:
    assert importlib.import_module(old) is importlib.import_module(new)
    # the module keeps its true home, so reload() and pickling use the new path
    assert importlib.import_module(old).__spec__.name == new


def test_old_distribution_package_and_submodules() -> None:
    import inline_ipsec.control.distribution as new_pkg
    import inline_ipsec.control.distribution.placement as new_placement
    import inline_ipsec.distribution as old_pkg
    import inline_ipsec.distribution.placement as old_placement
    from inline_ipsec.distribution import Distributor
    assert old_pkg is new_pkg and old_placement is new_placement
    assert Distributor is new_pkg.Distributor


def test_gateway_package_reexports() -> None:
    import inline_ipsec.gateway as gw
    from inline_ipsec.dataplane.gateway import Gateway
    from inline_ipsec.io.link import WireLink
    assert gw.Gateway is Gateway and gw.WireLink is WireLink
    assert gw.core.Gateway is Gateway   # attribute access without importing the submodule
    for name in gw.__all__:
        assert hasattr(gw, name), name


def test_unmoved_names_are_not_answered() -> None:
    assert _aliases.resolve("inline_ipsec.gateway") is None
    assert _aliases.resolve("inline_ipsec.distributionx") is None
    assert _aliases.resolve("inline_ipsec.distribution.placement") == (
        "inline_ipsec.control.distribution.placement")
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("inline_ipsec.gateway.no_such_module")


def test_old_path_in_a_fresh_interpreter() -> None:
    # a user's first import may be an old submodule path, before anything else is loaded
    code = ("import inline_ipsec.gateway.traffic as t, sys; "
            "assert t is sys.modules['inline_ipsec.io.traffic']; print(t.__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "inline_ipsec.io.traffic"
