"""Make `src/` importable when the package is not installed (the lead's tests/conftest.py
may do this globally later)."""
import os
import sys

_SRC = os.path.join(os.path.dirname(__file__), "..", "..", "src")
if os.path.abspath(_SRC) not in [os.path.abspath(p) for p in sys.path]:
    sys.path.insert(0, os.path.abspath(_SRC))
