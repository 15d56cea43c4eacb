"""Fake DRM file trees for the Intel probe, implementing ``dgprofile.probes._drm_sysfs.DrmFiles``, per machine.

Not captured from Intel hardware (none was available): the files are laid out as the kernel documents them
(xe: Documentation/ABI/testing/sysfs-driver-xe for ``tileN/physical_vram_size_bytes`` and the
``tileN/gtN/freq0`` directory, hwmon ``power1_max`` in microwatts; i915: ``gt_RP0_freq_mhz``; DRM fdinfo keys from
Documentation/gpu/drm-usage-stats.rst; pci.ids lines as lspci's database writes them), with the parts' public
figures: Arc B580 (PCI 8086:e20b, 12 GB, 2850 MHz maximum, 190 W), Arc Pro B70 (32 GB, 230 W sustained), a Lunar
Lake laptop's integrated Arc 140V (8086:64a0 at 0000:00:02.0, no local memory). The B70's PCI id is written as a
placeholder the datasheet table does not list (0xe2ff), so the probe must name it through the pci.ids line.
Bus ids, pids and client ids are made up.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dgprofile.records.values import Unavailable

GIB = 1 << 30


@dataclass
class FakeDrmFiles:
    """Files (path -> text) and symbolic links (path -> absolute target); directories are implied by paths."""

    files: dict[str, str] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)

    def read_text(self, path: str) -> str | Unavailable:
        if path in self.files:
            return self.files[path]
        return Unavailable(f"{path} is not readable (No such file or directory)")

    def list_dir(self, path: str) -> tuple[str, ...] | Unavailable:
        prefix = path.rstrip("/") + "/"
        names = {p[len(prefix):].split("/")[0] for p in (*self.files, *self.links) if p.startswith(prefix)}
        if not names:
            return Unavailable(f"{path} cannot be listed (No such file or directory)")
        return tuple(sorted(names))

    def resolve(self, path: str) -> str | Unavailable:
        if path in self.links:
            return self.links[path]
        return Unavailable(f"{path} does not exist (No such file or directory)")


def card(tree: FakeDrmFiles, number: int, *, device_id: str, bus_id: str, driver: str,
         vram_bytes: int | None = None, rp0_mhz: int = 2850, power_uw: int | None = None) -> None:
    """Add /sys/class/drm/cardN for one Intel GPU (and a display connector, which the probe must skip)."""
    base = f"/sys/class/drm/card{number}"
    tree.links[f"{base}/device"] = f"/sys/devices/pci0000:00/0000:00:01.0/{bus_id}"
    tree.links[f"{base}/device/driver"] = f"/sys/bus/pci/drivers/{driver}"
    tree.files[f"{base}/device/vendor"] = "0x8086\n"
    tree.files[f"{base}/device/device"] = f"0x{device_id}\n"
    tree.files[f"{base}/device/revision"] = "0x00\n"
    tree.files[f"/sys/class/drm/card{number}-DP-1/status"] = "disconnected\n"
    if driver == "xe":
        tree.files[f"{base}/device/tile0/gt0/freq0/rp0_freq"] = f"{rp0_mhz}\n"
        tree.files[f"{base}/device/tile0/gt0/freq0/max_freq"] = f"{rp0_mhz}\n"
        if vram_bytes is not None:
            tree.files[f"{base}/device/tile0/physical_vram_size_bytes"] = f"{vram_bytes}\n"
    else:
        tree.files[f"{base}/gt_RP0_freq_mhz"] = f"{rp0_mhz}\n"
    if power_uw is not None:
        tree.files[f"{base}/device/hwmon/hwmon4/power1_max"] = f"{power_uw}\n"
        tree.files[f"{base}/device/hwmon/hwmon4/power1_rated_max"] = f"{power_uw}\n"


def client(tree: FakeDrmFiles, *, pid: int, comm: str, bus_id: str, client_id: int, fds: tuple[int, ...],
           vram_kib: int, system_kib: int, driver: str = "xe") -> None:
    """A process with a DRM client open through ``fds`` (all the same client)."""
    tree.files[f"/proc/{pid}/comm"] = f"{comm}\n"
    for fd in fds:
        tree.links[f"/proc/{pid}/fd/{fd}"] = "/dev/dri/renderD128"
        tree.files[f"/proc/{pid}/fdinfo/{fd}"] = (
            f"pos:\t0\nflags:\t02100002\nmnt_id:\t26\nino:\t1093\ndrm-driver:\t{driver}\n"
            f"drm-client-id:\t{client_id}\ndrm-pdev:\t{bus_id}\n"
            f"drm-total-system:\t{system_kib} KiB\ndrm-shared-system:\t0\ndrm-active-system:\t0\n"
            f"drm-resident-system:\t{system_kib} KiB\ndrm-purgeable-system:\t0\n"
            f"drm-total-vram0:\t{vram_kib} KiB\ndrm-resident-vram0:\t{vram_kib} KiB\n"
            "drm-cycles-rcs:\t28257900\ndrm-total-cycles-rcs:\t7655183225\n")
    tree.links[f"/proc/{pid}/fd/0"] = "/dev/pts/0"


PCI_IDS = """# pci.ids excerpt
8086  Intel Corporation
\t64a0  Lunar Lake [Intel Arc Graphics 130V / 140V]
\te20b  Battlemage G21 [Arc B580]
\te2ff  Battlemage G31 [Arc Pro B70]
8087  Intel Corporation
"""


def arc_b580() -> FakeDrmFiles:
    tree = FakeDrmFiles(files={"/usr/share/hwdata/pci.ids": PCI_IDS})
    card(tree, 1, device_id="e20b", bus_id="0000:03:00.0", driver="xe", vram_bytes=12 * GIB, power_uw=190_000_000)
    return tree


def arc_pro_b70() -> FakeDrmFiles:
    tree = FakeDrmFiles(files={"/usr/share/hwdata/pci.ids": PCI_IDS})
    card(tree, 0, device_id="e2ff", bus_id="0000:03:00.0", driver="xe", vram_bytes=32 * GIB, rp0_mhz=2800,
         power_uw=230_000_000)
    return tree


def busy_b580() -> FakeDrmFiles:
    """A B580 while llama-server holds 9 GiB of it through two file descriptors of one DRM client."""
    tree = arc_b580()
    client(tree, pid=4242, comm="llama-server", bus_id="0000:03:00.0", client_id=12, fds=(7, 9),
           vram_kib=9 * 1024 * 1024, system_kib=2048)
    return tree


def lunar_lake_igpu() -> FakeDrmFiles:
    tree = FakeDrmFiles(files={"/usr/share/hwdata/pci.ids": PCI_IDS})
    card(tree, 0, device_id="64a0", bus_id="0000:00:02.0", driver="xe", rp0_mhz=2050)
    return tree


def no_intel_gpu() -> FakeDrmFiles:
    """Only an AMD card is driven here (vendor 0x1002, amdgpu)."""
    tree = FakeDrmFiles()
    tree.links["/sys/class/drm/card0/device"] = "/sys/devices/pci0000:00/0000:03:00.0"
    tree.links["/sys/class/drm/card0/device/driver"] = "/sys/bus/pci/drivers/amdgpu"
    tree.files["/sys/class/drm/card0/device/vendor"] = "0x1002\n"
    return tree


SCENARIOS = {"arc-b580": arc_b580, "arc-pro-b70": arc_pro_b70, "busy-b580": busy_b580,
             "lunar-lake-igpu": lunar_lake_igpu, "no-intel-gpu": no_intel_gpu}
