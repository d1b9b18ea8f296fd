"""The modelled PFE (ASIC) of inline-ipsec: ESP kernels in Cython over OpenSSL libcrypto.

Private: imported only by `inline_ipsec.pfe`, the benchmarks and the tests."""
from .status import Status
from .table import SaTable, MAX_SAS, OPENSSL_VERSION, MAX_REPLAY_WINDOW, MIN_REPLAY_WINDOW
from .calibrate import RawGcm
from .replay import ReplayWindow

__all__ = ["Status", "SaTable", "RawGcm", "ReplayWindow", "MAX_SAS", "OPENSSL_VERSION",
           "MAX_REPLAY_WINDOW", "MIN_REPLAY_WINDOW"]
