"""The README's quick example runs as printed."""
from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_quick_example_runs(capsys):
    text = README.read_text()
    block = re.search(r"```python\n(import os\n.*?)```", text, re.S)
    assert block, "the quick example is missing from the README"
    namespace: dict = {}
    exec(compile(block.group(1), "README.md", "exec"), namespace)
    assert namespace["pfe"].counters(namespace["h"]).packets == 33
    assert "SaCounters(packets=33" in capsys.readouterr().out
