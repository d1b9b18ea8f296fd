"""The modelled PFE (ASIC) of inline-ipsec: ESP kernels in Cython over OpenSSL libcrypto, with
intel-ipsec-mb as a second AES-GCM backend when it was found at build time.

Private: imported only by `inline_ipsec.pfe`, the benchmarks and the tests."""
from .status import Status
from .table import (
    BACKENDS,
    HANDLE_GENERATIONS,
    HANDLE_SLOT_BITS_ as HANDLE_SLOT_BITS,
    IPSEC_MB_ARCH_ENV,
    IPSEC_MB_ARCHS,
    IPSEC_MB_DESCRIPTION,
    MAX_REPLAY_WINDOW,
    MAX_SAS,
    MIN_REPLAY_WINDOW,
    OPENSSL_VERSION,
    SaTable,
    ipsec_mb_probe,
)
from .calibrate import RawGcm
from .replay import ReplayWindow

__all__ = ["Status", "SaTable", "RawGcm", "ReplayWindow", "MAX_SAS", "OPENSSL_VERSION",
           "MAX_REPLAY_WINDOW", "MIN_REPLAY_WINDOW", "BACKENDS", "IPSEC_MB_DESCRIPTION",
           "IPSEC_MB_ARCH_ENV", "IPSEC_MB_ARCHS", "ipsec_mb_probe",
           "HANDLE_SLOT_BITS", "HANDLE_GENERATIONS"]
