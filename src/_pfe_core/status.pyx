# cython: language_level=3
"""Exports `Status` (declared in status.pxd) to Python as an IntEnum."""
