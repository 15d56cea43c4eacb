"""Fake host trees for the CPU probe: /proc and /sys files, SMBIOS memory tables, psutil counts.

XEON_CPUINFO is the first processor of /proc/cpuinfo on the 2-core Xeon (Cascade Lake) this repo is developed on;
GRACE_CPUINFO follows the arm64 layout of /proc/cpuinfo (no "model name"; Features use the kernel's hwcap names,
Documentation/arch/arm64/elf_hwcaps.rst) for a Neoverse V2 core, hand-written. SMBIOS type-17 structures are
built from the layout in DSP0134 (SMBIOS 3.3), not captured from a machine.
"""

from __future__ import annotations

import struct
from pathlib import Path

from dgprofile.probes.host_cpu import HostCounts, HostSeams

XEON_CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 85
model name\t: Intel(R) Xeon(R) Processor @ 2.50GHz
stepping\t: 7
cache size\t: 36608 KB
physical id\t: 0
siblings\t: 2
core id\t\t: 0
cpu cores\t: 2
flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ss ht \
syscall nx pdpe1gb rdtscp lm constant_tsc rep_good nopl xtopology nonstop_tsc cpuid tsc_known_freq pni pclmulqdq ssse3 \
fma cx16 pcid sse4_1 sse4_2 x2apic movbe popcnt tsc_deadline_timer aes xsave avx f16c rdrand hypervisor lahf_lm abm \
3dnowprefetch cpuid_fault ssbd ibrs ibpb stibp ibrs_enhanced fsgsbase tsc_adjust bmi1 avx2 smep bmi2 erms invpcid mpx \
avx512f avx512dq rdseed adx smap clflushopt clwb avx512cd avx512bw avx512vl xsaveopt xsavec xgetbv1 xsaves arat umip \
pku ospke avx512_vnni md_clear flush_l1d arch_capabilities

processor\t: 1
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Processor @ 2.50GHz
flags\t\t: fpu
"""

SAPPHIRE_RAPIDS_FLAGS = "avx avx2 fma f16c avx512f avx512bw avx512_vnni avx512_bf16 avx512_fp16 avx_vnni amx_bf16 amx_tile amx_int8"

GRACE_CPUINFO = """processor\t: 0
BogoMIPS\t: 2000.00
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm jscvt fcma lrcpc dcpop \
sha3 sm3 sm4 asimddp sha512 sve asimdfhm dit uscat ilrcpc flagm ssbs sb paca pacg dcpodp sve2 sveaes svepmull \
svebitperm svesha3 svesm4 flagm2 frint svei8mm svebf16 i8mm bf16 dgh bti
CPU implementer\t: 0x41
CPU architecture: 8
CPU variant\t: 0x0
CPU part\t: 0xd4f
CPU revision\t: 0
"""


def smbios_memory_device(*, size_mb: int, width_bits: int, speed: int, configured: int,
                         extended_speed: int = 0, extended_configured: int = 0) -> bytes:
    """One SMBIOS 3.3 type-17 structure (0x5C bytes) followed by its strings."""
    raw = bytearray(0x5C)
    raw[0], raw[1] = 17, 0x5C
    struct.pack_into("<H", raw, 0x08, width_bits + 8 if width_bits not in (0, 0xFFFF) else width_bits)  # + ECC bits
    struct.pack_into("<H", raw, 0x0A, width_bits)
    struct.pack_into("<H", raw, 0x0C, size_mb)
    raw[0x10], raw[0x11] = 1, 2  # device locator and bank locator: strings 1 and 2
    raw[0x12] = 0x22  # DDR5
    struct.pack_into("<H", raw, 0x15, speed)
    struct.pack_into("<H", raw, 0x20, configured)
    struct.pack_into("<I", raw, 0x54, extended_speed)
    struct.pack_into("<I", raw, 0x58, extended_configured)
    return bytes(raw) + b"DIMM_A1\x00P0 CHANNEL A\x00\x00"


def linux_tree(root: Path, *, cpuinfo: str = XEON_CPUINFO, l3: tuple[tuple[str, str], ...] = (("0", "36608K"),),
               cpus: int = 2, numa_nodes: int = 1, memory_devices: tuple[bytes, ...] | None = None) -> Path:
    """Write a fake /proc and /sys under ``root``; ``l3`` is (cache id, size) per L3 instance, CPUs spread evenly."""
    (root / "proc").mkdir(parents=True)
    (root / "proc/cpuinfo").write_text(cpuinfo)
    for cpu in range(cpus):
        l3_id, size = l3[cpu * len(l3) // cpus] if l3 else ("", "")
        for index, (level, kind, cache_size) in enumerate([("1", "Data", "32K"), ("2", "Unified", "1024K")]
                                                          + ([("3", "Unified", size)] if l3 else [])):
            cache = root / f"sys/devices/system/cpu/cpu{cpu}/cache/index{index}"
            cache.mkdir(parents=True)
            (cache / "level").write_text(f"{level}\n")
            (cache / "type").write_text(f"{kind}\n")
            (cache / "size").write_text(f"{cache_size}\n")
            if level == "3":
                (cache / "id").write_text(f"{l3_id}\n")
    for node in range(numa_nodes):
        (root / f"sys/devices/system/node/node{node}").mkdir(parents=True)
    if memory_devices is not None:
        for i, raw in enumerate(memory_devices):
            entry = root / f"sys/firmware/dmi/entries/17-{i}"
            entry.mkdir(parents=True)
            (entry / "raw").write_bytes(raw)
    return root


def counts(physical: int = 2, logical: int = 2, total: int = 24 << 30, available: int = 23 << 30) -> HostCounts:
    return HostCounts(physical_cores=physical, logical_cores=logical, ram_total_bytes=total,
                      ram_available_bytes=available)


def linux_seams(root: Path, *, arch: str = "x86_64") -> HostSeams:
    def no_commands(argv):
        raise AssertionError(f"the Linux CPU probe ran a command: {argv}")

    def no_library():
        raise AssertionError("the Linux CPU probe used slow py-cpuinfo")

    return HostSeams(os_name="Linux", arch=arch, root=root, run=no_commands, counts=counts,
                     cpuinfo_library=no_library)
