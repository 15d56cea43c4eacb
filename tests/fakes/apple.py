"""Fake macOS command outputs for the Apple probe, per machine.

Hand-written in the output formats of macOS 13-14 commands, not captured from a Mac in this repo:
``system_profiler SPDisplaysDataType -json`` (keys ``_name``, ``sppci_cores``, ``sppci_model``,
``spdisplays_vendor``, as that command prints them), its text form ("Total Number of Cores:"), ``sysctl hw.optional``
("key: value" lines), ``sysctl -n`` (bare values) and ``sw_vers -productVersion``. The recommended working sets
are illustrative (about 75% of 64 GB and 67% of 16 GB, the ratios users report for Metal), not readings.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from dgprofile.records.values import Unavailable


def _displays_json(chip: str, cores: int, display: str) -> str:
    return json.dumps({"SPDisplaysDataType": [{
        "_name": chip,
        "spdisplays_mtlgpufamilysupport": "spdisplays_metal3",
        "spdisplays_ndrvs": [{
            "_name": display, "_spdisplays_pixels": "3456 x 2234", "_spdisplays_resolution": "1728 x 1117 @ 120.00Hz",
            "spdisplays_connection_type": "spdisplays_internal", "spdisplays_main": "spdisplays_yes",
            "spdisplays_online": "spdisplays_yes"}],
        "spdisplays_vendor": "sppci_vendor_Apple",
        "sppci_bus": "spdisplays_builtin",
        "sppci_cores": str(cores),
        "sppci_device_type": "spdisplays_gpu",
        "sppci_model": chip,
    }]}, indent=2)


def _displays_text(chip: str, cores: int) -> str:
    return f"""Graphics/Displays:

    {chip}:

      Chipset Model: {chip}
      Type: GPU
      Bus: Built-In
      Total Number of Cores: {cores}
      Vendor: Apple (0x106b)
      Metal Support: Metal 3
      Displays:
        Color LCD:
          Display Type: Built-In Retina LCD
          Resolution: 2560 x 1600 Retina
          Main Display: Yes
          Online: Yes
          Connection Type: Internal
"""


def _optional(bf16_i8mm: int) -> str:
    return "\n".join([
        "hw.optional.arm.FEAT_FlagM: 1", "hw.optional.arm.FEAT_FHM: 1", "hw.optional.arm.FEAT_DotProd: 1",
        "hw.optional.arm.FEAT_SHA3: 1", "hw.optional.arm.FEAT_RDM: 1", "hw.optional.arm.FEAT_LSE: 1",
        f"hw.optional.arm.FEAT_BF16: {bf16_i8mm}", f"hw.optional.arm.FEAT_I8MM: {bf16_i8mm}",
        "hw.optional.arm.FEAT_FP16: 1", "hw.optional.arm.FEAT_SME: 0", "hw.optional.arm.FEAT_SME2: 0",
        "hw.optional.floatingpoint: 1", "hw.optional.neon: 1", "hw.optional.neon_hpfp: 1",
        "hw.optional.neon_fp16: 1", "hw.optional.armv8_crc32: 1", "hw.optional.AdvSIMD: 1", "hw.optional.arm64: 1",
    ]) + "\n"


def mac(chip: str, *, cores: int, memsize: int, macos: str, bf16_i8mm: int) -> dict[tuple[str, ...], str]:
    return {
        ("sysctl", "-n", "machdep.cpu.brand_string"): f"{chip}\n",
        ("sysctl", "-n", "hw.memsize"): f"{memsize}\n",
        ("sysctl", "-n", "iogpu.wired_limit_mb"): "0\n",
        ("sysctl", "hw.optional"): _optional(bf16_i8mm),
        ("system_profiler", "SPDisplaysDataType", "-json"): _displays_json(chip, cores, "Color LCD"),
        ("system_profiler", "SPDisplaysDataType"): _displays_text(chip, cores),
        ("sw_vers", "-productVersion"): f"{macos}\n",
    }


M3_MAX = mac("Apple M3 Max", cores=40, memsize=64 << 30, macos="14.5", bf16_i8mm=1)
M3_MAX_WORKING_SET = 48 << 30
M1 = mac("Apple M1", cores=8, memsize=16 << 30, macos="13.6.7", bf16_i8mm=0)
M1_WORKING_SET = 11453251584
INTEL_MAC = {("sysctl", "-n", "machdep.cpu.brand_string"): "Intel(R) Core(TM) i9-9980HK CPU @ 2.40GHz\n"}


def runner(outputs: dict[tuple[str, ...], str]):
    """A command runner answering from ``outputs``; any other command fails like a missing sysctl key."""
    def run(argv: Sequence[str]) -> str | Unavailable:
        key = tuple(argv)
        if key in outputs:
            return outputs[key]
        return Unavailable(f"`{' '.join(argv)}` failed: unknown oid")
    return run
