"""Builds the `_pfe_core` Cython kernels against the system OpenSSL libcrypto (>= 3.0).

Everything else (metadata, dependencies) lives in pyproject.toml. libcrypto is found in this
order, and the first candidate that compiles and links a probe program wins:
  1. INLINE_IPSEC_OPENSSL_PREFIX  (headers in PREFIX/include, library in PREFIX/lib[64])
  2. `pkg-config --cflags --libs libcrypto`
  3. the compiler's default search paths
The search runs inside build_ext, so `sdist` and metadata work on a machine without the headers,
and a failure prints one clear `error:` naming the package to install.

intel-ipsec-mb (Debian: libipsec-mb-dev) is an optional second AES-GCM backend: when a probe
against intel-ipsec-mb.h and -lIPSec_MB compiles and links, the kernels are built with it too
(INLINE_IPSEC_NO_IPSEC_MB=1 leaves it out). The build says which backends it built.

The C counter structs come from the counter catalogue (src/inline_ipsec/stats/catalogue.py):
every build regenerates src/_pfe_core/counters.pxd from it, so no copy is kept by hand.

INLINE_IPSEC_SANITIZE=address builds the kernels with AddressSanitizer into a directory of
their own, build/sanitize-address/, never over the normal build (the README's "Reliability"
section says how to run the tests against it):
    INLINE_IPSEC_SANITIZE=address python setup.py build_ext
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import subprocess
import tempfile
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

try:  # setuptools >= 59
    from setuptools.errors import PlatformError
except ImportError:  # pragma: no cover
    from distutils.errors import DistutilsPlatformError as PlatformError

HERE = Path(__file__).parent
CORE = HERE / "src" / "_pfe_core"
CATALOGUE = Path("src", "inline_ipsec", "stats", "catalogue.py")
COUNTERS_PXD = Path("src", "_pfe_core", "counters.pxd")
MODULES = ["status", "replay", "gcm", "esp_outb", "esp_inb", "table", "calibrate", "pipeline",
           "burst_io"]
#: Sanitizers a build may be instrumented with: the compile and link flags of each.
SANITIZERS = {"address": ["-fsanitize=address", "-fno-omit-frame-pointer", "-g"]}

PROBE = r"""
#include <openssl/evp.h>
#include <openssl/crypto.h>
#include <openssl/opensslv.h>
#if OPENSSL_VERSION_NUMBER < 0x30000000L
#error "OpenSSL >= 3.0 is required"
#endif
int main(void) {
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int ok = ctx != NULL && EVP_EncryptInit_ex(ctx, EVP_aes_128_gcm(), NULL, NULL, NULL) == 1;
    EVP_CIPHER_CTX_free(ctx);
    return ok ? 0 : 1;
}
"""

IMB_PROBE = r"""
#include <intel-ipsec-mb.h>
int main(void) {
    IMB_MGR *m = alloc_mb_mgr(0);
    free_mb_mgr(m);
    return 0;
}
"""

INSTALL_HINT = """
inline-ipsec needs the OpenSSL (>= 3.0) libcrypto headers and library to build its
_pfe_core extension, and could not compile and link a test program against them.
  Debian/Ubuntu:  apt-get install libssl-dev pkg-config
  Fedora/RHEL:    dnf install openssl-devel pkgconf-pkg-config
  Alpine:         apk add openssl-dev pkgconf
  macOS:          brew install openssl@3, then INLINE_IPSEC_OPENSSL_PREFIX=$(brew --prefix openssl@3)
Or point INLINE_IPSEC_OPENSSL_PREFIX at an OpenSSL installation (with include/ and lib/).
"""


def _candidates() -> list[tuple[str, list[str], list[str]]]:
    """(label, include dirs, library dirs) in the documented order."""
    found = []
    prefix = os.environ.get("INLINE_IPSEC_OPENSSL_PREFIX")
    if prefix:
        libdirs = [str(Path(prefix, d)) for d in ("lib", "lib64") if Path(prefix, d).is_dir()]
        found.append((f"INLINE_IPSEC_OPENSSL_PREFIX={prefix}", [str(Path(prefix, "include"))],
                      libdirs))
    if shutil.which("pkg-config"):
        try:
            cflags = subprocess.run(["pkg-config", "--cflags-only-I", "libcrypto"], check=True,
                                    capture_output=True, text=True).stdout.split()
            libs = subprocess.run(["pkg-config", "--libs-only-L", "libcrypto"], check=True,
                                  capture_output=True, text=True).stdout.split()
            found.append(("pkg-config libcrypto", [f[2:] for f in cflags], [f[2:] for f in libs]))
        except (subprocess.CalledProcessError, OSError):
            pass
    found.append(("compiler defaults", [], []))
    return found


def _probe(source: str, incs: list[str], libdirs: list[str], libraries: list[str]) -> str:
    """Compile and link `source`; returns "" on success, else the error text."""
    from distutils.ccompiler import new_compiler
    from distutils.sysconfig import customize_compiler

    cc = new_compiler()
    customize_compiler(cc)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp, "probe.c")
        src.write_text(source)
        try:
            objs = cc.compile([str(src)], output_dir=tmp, include_dirs=incs)
            cc.link_executable(objs, str(Path(tmp, "probe")), libraries=libraries,
                               library_dirs=libdirs)
        except Exception as exc:  # compile or link failed
            return str(exc) or exc.__class__.__name__
    return ""


def _sanitizer() -> str:
    """The sanitizer named by INLINE_IPSEC_SANITIZE, or ""."""
    name = os.environ.get("INLINE_IPSEC_SANITIZE", "").strip()
    if name and name not in SANITIZERS:
        raise PlatformError(f"INLINE_IPSEC_SANITIZE={name!r}: expected one of "
                            f"{', '.join(sorted(SANITIZERS))}")
    return name


class BuildExt(build_ext):
    """Find libcrypto, prove it with a probe, look for intel-ipsec-mb, then build."""

    def finalize_options(self) -> None:
        super().finalize_options()
        sanitizer = _sanitizer()
        if sanitizer:
            # A tree of its own: an instrumented _pfe_core never replaces the normal one,
            # in place or in build/lib, and its objects are never mixed with normal ones.
            out = HERE / "build" / f"sanitize-{sanitizer}"
            self.inplace = False
            self.build_lib = str(out)
            self.build_temp = str(out / "temp")

    def run(self) -> None:
        label, incs, libdirs = self._find_libcrypto()
        with_imb = self._find_ipsec_mb(incs, libdirs)
        backends = "openssl" + (", ipsec-mb" if with_imb else "")
        print(f"inline-ipsec: building _pfe_core against libcrypto from {label}; "
              f"crypto backends: {backends}")
        sanitizer = _sanitizer()
        for ext in self.extensions:
            if sanitizer:
                flags = SANITIZERS[sanitizer]
                # -O1 keeps the reports' stack traces readable; the flags come last so that
                # they win over the module's own -O2
                ext.extra_compile_args = list(ext.extra_compile_args) + flags + ["-O1"]
                ext.extra_link_args = list(ext.extra_link_args or []) + flags
            if "crypto" in ext.libraries:
                ext.include_dirs = incs + list(ext.include_dirs)
                ext.library_dirs = libdirs + list(ext.library_dirs)
                if libdirs:
                    ext.runtime_library_dirs = libdirs + list(ext.runtime_library_dirs or [])
                if with_imb:
                    ext.libraries = list(ext.libraries) + ["IPSec_MB"]
                    ext.define_macros = list(ext.define_macros) + [
                        ("INLINE_IPSEC_HAVE_IPSEC_MB", "1")]
        super().run()
        if sanitizer:
            package = Path(self.build_lib, "_pfe_core")
            package.mkdir(parents=True, exist_ok=True)
            shutil.copy2(CORE / "__init__.py", package / "__init__.py")
            print(f"inline-ipsec: _pfe_core with {sanitizer} sanitizer in {self.build_lib}; "
                  f"run with PYTHONPATH={self.build_lib} and the sanitizer's runtime preloaded")

    def _find_libcrypto(self) -> tuple[str, list[str], list[str]]:
        errors = []
        for label, incs, libdirs in _candidates():
            error = _probe(PROBE, incs, libdirs, ["crypto"])
            if not error:
                return label, incs, libdirs
            errors.append(f"  {label}: {error}")
        raise PlatformError(INSTALL_HINT + "Tried:\n" + "\n".join(errors))

    def _find_ipsec_mb(self, incs: list[str], libdirs: list[str]) -> bool:
        if os.environ.get("INLINE_IPSEC_NO_IPSEC_MB"):
            print("inline-ipsec: INLINE_IPSEC_NO_IPSEC_MB is set: building without ipsec-mb")
            return False
        error = _probe(IMB_PROBE, incs, libdirs, ["IPSec_MB"])
        if error:
            print("inline-ipsec: intel-ipsec-mb not found (apt-get install libipsec-mb-dev "
                  "for the faster AES-GCM backend); building with OpenSSL only")
        return not error


def generate_counters_pxd() -> None:
    """src/_pfe_core/counters.pxd from the counter catalogue, rewritten only when it changes
    (so an unchanged catalogue rebuilds nothing). The catalogue is loaded on its own: it needs
    only the standard library, the package around it is not importable yet."""
    spec = importlib.util.spec_from_file_location("_inline_ipsec_catalogue", HERE / CATALOGUE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module          # dataclasses look their module up
    try:
        spec.loader.exec_module(module)
        text = module.c_declarations(CATALOGUE.as_posix())
    finally:
        del sys.modules[spec.name]
    target = HERE / COUNTERS_PXD
    if not target.exists() or target.read_text() != text:
        target.write_text(text)


def extensions() -> list[Extension]:
    from Cython.Build import cythonize

    generate_counters_pxd()
    exts = [
        Extension(
            f"_pfe_core.{name}",
            [str(Path("src", "_pfe_core", f"{name}.pyx"))],
            libraries=["crypto"],
            include_dirs=[str(Path("src", "_pfe_core"))],
            depends=[str(p) for p in Path("src", "_pfe_core").glob("*.p*d")]
            + [str(p) for p in Path("src", "_pfe_core").glob("*.h")] + [str(CATALOGUE)],
            extra_compile_args=["-O2", "-Wall", "-Wno-unused-function",
                                "-Wno-unreachable-code"],
        )
        for name in MODULES
    ]
    return cythonize(
        exts,
        compiler_directives={
            "language_level": "3",
            "boundscheck": False,
            "wraparound": False,
            "initializedcheck": False,
            "cdivision": True,
            "embedsignature": True,
        },
        annotate=bool(os.environ.get("INLINE_IPSEC_CYTHON_ANNOTATE")),
        include_path=[str(Path("src"))],
    )


if __name__ == "__main__":
    setup(ext_modules=extensions(), cmdclass={"build_ext": BuildExt})
