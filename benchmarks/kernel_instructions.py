"""Run the PFE's burst kernel (no Python between bursts) for instruction counting.

    INLINE_IPSEC_IPSEC_MB_ARCH=sse valgrind --tool=callgrind --toggle-collect='*esp_encrypt_burst*' \\
        python benchmarks/kernel_instructions.py encrypt 64 [TUNNELS]
    callgrind_annotate callgrind.out.<pid> | head -30

The intel-ipsec-mb SSE code path runs under valgrind (its AVX-512 one does not). callgrind then
lists the instructions of the library's GCM function and of the kernel's own code (esp_outb.c
/ esp_inb.c, wire_ops.h, imb_shim.h) separately; this script prints the number of packets to
divide them by. With TUNNELS (default 1) the packets of each burst
belong to that many SA pairs in turn. docs/performance.md has the counts."""
from __future__ import annotations

import sys

from inline_ipsec.benchmark import EngineBursts
from inline_ipsec.perf.costs import KernelBursts

WINDOWS = 200
BURSTS = 4
BURST = 32


def main() -> None:
    direction = sys.argv[1] if len(sys.argv) > 1 else "encrypt"
    size = int(sys.argv[2]) if len(sys.argv) > 2 else 64
    tunnels = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    engine = EngineBursts("pfe", "ipsec-mb", 256, size, BURST, bursts=BURSTS, repeat=1,
                          tunnels=tunnels)
    kernel = KernelBursts(engine, direction)
    for _ in range(WINDOWS):
        kernel.window_ns(1)
    print(f"{direction} {size} B, {tunnels} tunnel(s): {WINDOWS * BURSTS * BURST} packets "
          f"through the kernel")


if __name__ == "__main__":
    main()
