"""`dgprofile hardware list|show`: the datasheet table behind `predict`, as a table or as JSON."""

from __future__ import annotations

import json

import click

from dgprofile.records.codec import to_json
from dgprofile.records.values import Unavailable
from dgprofile.specs.hardware import HardwareSpec, all_specs, architecture_of, spec_by_id
from dgprofile.text.units import bandwidth_text, bytes_text, flops_text, plain_text, text_table

_COLUMNS = ("id", "name", "memory", "bandwidth", "bf16 TFLOP/s", "memory class")


def _row(spec: HardwareSpec) -> tuple[str, ...]:
    bf16 = spec.peak_flops_per_s.get("bf16")
    return (spec.id, spec.name, bytes_text(spec.memory_bytes), bandwidth_text(spec.memory_bandwidth_bytes_per_s),
            "-" if bf16 is None else f"{bf16 / 1e12:.1f}", spec.memory_class)


def _details(spec: HardwareSpec) -> str:
    flops = ", ".join(f"{dtype} {flops_text(rate)}" for dtype, rate in spec.peak_flops_per_s.items())
    architecture = architecture_of(spec)
    runs_as = ([] if isinstance(architecture, Unavailable) else
               [(f"{precision} runs as", words) for precision, words in architecture.runs_as.items()])
    approximate = ", ".join(f"{figure} (log-sigma {sigma:g})" for figure, sigma in spec.approximate.items())
    lines = [
        ("id", spec.id), ("name", spec.name), ("vendor", spec.vendor), ("device type", spec.device_type),
        ("memory class", spec.memory_class), ("memory", bytes_text(spec.memory_bytes)),
        ("memory bandwidth", bandwidth_text(spec.memory_bandwidth_bytes_per_s)), ("dense peak", flops),
        ("native precisions", ", ".join(spec.native_precisions) or "none"),
        ("architecture", plain_text(architecture.name if not isinstance(architecture, Unavailable)
                                    else architecture)),
        *runs_as,
        ("derived figures", approximate or "none: every figure is published"),
        ("GPU cores / CUs / Xe cores", plain_text(spec.gpu_cores)), ("interconnect", plain_text(spec.interconnect)),
        ("interconnect per direction", bandwidth_text(spec.interconnect_bytes_per_s)),
        ("PCIe peer-to-peer", "allowed" if spec.peer_to_peer else "refused by the driver"),
        ("matches device names", "; ".join(spec.match_names)),
        ("matches PCI ids", "; ".join(spec.pci_device_ids) or "none"), ("notes", spec.notes),
    ]
    lines += [("source", source) for source in spec.sources]
    return "\n".join(f"{key + ':':28} {value}" for key, value in lines)


@click.group()
def hardware() -> None:
    """The datasheet table behind `predict`: dense peak rates, memory and bandwidth per accelerator."""


@hardware.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print every entry with all its fields as JSON.")
def list_(as_json: bool) -> None:
    """List every entry; the id is what `predict --hardware` takes."""
    specs = all_specs()
    if as_json:
        click.echo(json.dumps([to_json(spec) for spec in specs], indent=2))
        return
    click.echo("\n".join(text_table([_COLUMNS, *(_row(spec) for spec in specs)], indent="")))
    click.echo(f"\n{len(specs)} entries; figures are datasheet values (dense). "
               "`dgprofile hardware show ID` gives sources and notes.")


@hardware.command()
@click.argument("hardware_id")
@click.option("--json", "as_json", is_flag=True, help="Print the entry as JSON.")
def show(hardware_id: str, as_json: bool) -> None:
    """Show one entry (by id or exact device name) with its sources and notes."""
    spec = spec_by_id(hardware_id)
    click.echo(json.dumps(to_json(spec), indent=2) if as_json else _details(spec))
