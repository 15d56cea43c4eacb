"""HTML pages from result objects: view-models of formatted strings, rendered by Jinja templates.

The Jinja environment is built once (autoescape on, undefined names are errors). Python decides what each page
says and formats every number; templates only lay blocks out. Pages are self-contained: the stylesheet, the
scripts and the chart SVG are inlined, and a Content-Security-Policy forbids the page from fetching anything.

``render_result_html(result)`` is the page `dgprofile check` writes; ``dgprofile.pages.fleet_page`` and ``dgprofile.pages.compare_page``
build their pages from the same block types through ``render_page``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Literal

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from dgprofile.pages import charts
from dgprofile.records.codec import to_json
from dgprofile.records.limits import Limits
from dgprofile.records.machine import Accelerator, AppleGpu, FailedDevice, Machine, NvidiaGpu
from dgprofile.records.passes import PassMeasurement, PassTimes
from dgprofile.records.predictions import Curve, CurvePoint, PassEstimate, Prediction, Predictions, Scenario
from dgprofile.records.results import ResultFile
from dgprofile.records.timing import Timing
from dgprofile.records.values import Unavailable
from dgprofile.specs.hardware import all_specs
from dgprofile.text.units import (
    bandwidth_text,
    bytes_text,
    flops_text,
    percent_text,
    plain_text,
    seconds_text,
)

Tone = Literal["", "applies", "partial", "does-not-apply", "cannot-run", "unknown", "warning", "muted", "better",
               "worse", "same"]

DG_MODEL = "google/diffusiongemma-26B-A4B-it"
AR_MODEL = "google/gemma-4-26B-A4B-it"
VERDICT_LABELS = {
    "applies": "Applies",
    "partial": "Partial",
    "does-not-apply": "Does not apply",
    "cannot-run": "Cannot run",
}
VERDICT_MEANINGS = {
    "applies": "the advertised multi-x speedup holds",
    "partial": "faster, but well short of the advertised speedup",
    "does-not-apply": "about even or slower: the advertised speedup does not apply",
    "cannot-run": "the model does not fit this machine in any supported precision",
}
# One colour per term of a pass or of the memory need, the same in every chart of every page.
TERM_COLOURS = {"weights": "#2563eb", "compute": "#dc2626", "overhead": "#16a34a", "step-overhead": "#15803d",
                "sampler": "#ea580c", "kv-cache": "#9333ea", "activations": "#0891b2", "dequantisation": "#ca8a04",
                "interconnect": "#4b5563", "KV cache": "#9333ea", "DG sampler and self-conditioning": "#ea580c",
                "activation headroom": "#0891b2", "usable by the accelerator": "#9ca3af"}
PASS_LABELS = {"ar-step": "AR decode step", "dg-denoise": "DG denoise pass", "dg-commit": "DG commit pass",
               "prefill": "prefill"}


# ---------------------------------------------------------------------------------------------------------------
# View-model types

@dataclass(frozen=True)
class Cell:
    """A table cell; ``sort_key`` (a number as text, or empty) orders sortable tables numerically."""

    text: str
    sort_key: str = ""
    tone: Tone = ""


@dataclass(frozen=True)
class RowView:
    """A table row; ``filter_text`` is what a table's filter box matches against."""

    cells: tuple[Cell, ...]
    tone: Tone = ""
    filter_text: str = ""


@dataclass(frozen=True)
class TableView:
    """A table; ``sortable`` tables get clickable headers, ``filterable`` ones a filter box."""

    caption: str
    headers: tuple[str, ...]
    rows: tuple[RowView, ...]
    sortable: bool = False
    filterable: bool = False
    table_id: str = ""
    collapsed_summary: str = ""  # when set, the table starts folded behind this line
    kind: Literal["table"] = "table"


@dataclass(frozen=True)
class FactsView:
    """Label/value pairs."""

    title: str
    items: tuple[tuple[str, str], ...]
    kind: Literal["facts"] = "facts"


@dataclass(frozen=True)
class ChartView:
    """An inline SVG chart from dgprofile.pages.charts (pygal escapes every label it draws)."""

    svg: Markup
    caption: str
    kind: Literal["chart"] = "chart"


@dataclass(frozen=True)
class ListView:
    """A titled list of sentences."""

    title: str
    items: tuple[str, ...]
    tone: Tone = ""
    kind: Literal["list"] = "list"


@dataclass(frozen=True)
class CodeView:
    """A command block to copy."""

    caption: str
    text: str
    kind: Literal["code"] = "code"


@dataclass(frozen=True)
class NoticeView:
    """A sentence standing in for missing data (with the reason), or a warning about the data shown."""

    text: str
    tone: Tone = "muted"
    kind: Literal["notice"] = "notice"


@dataclass(frozen=True)
class Tile:
    """One big number with a label."""

    label: str
    value: str
    tone: Tone = ""
    detail: str = ""


@dataclass(frozen=True)
class TilesView:
    """A row of big numbers."""

    tiles: tuple[Tile, ...]
    kind: Literal["tiles"] = "tiles"


@dataclass(frozen=True)
class VerdictView:
    """The headline verdict box."""

    tone: Tone
    label: str
    summary: str
    band: str
    scenario: str
    reasons: tuple[str, ...]
    advice: tuple[str, ...]
    kind: Literal["verdict"] = "verdict"


@dataclass(frozen=True)
class ColumnsView:
    """Blocks side by side, one titled column each (the compare page's two machines)."""

    columns: tuple[tuple[str, tuple[Block, ...]], ...]
    kind: Literal["columns"] = "columns"


Block = (TableView | FactsView | ChartView | ListView | CodeView | NoticeView | TilesView | VerdictView
         | ColumnsView)


@dataclass(frozen=True)
class SectionView:
    """A titled part of a page; ``intro`` says what it shows."""

    id: str
    title: str
    intro: str
    blocks: tuple[Block, ...]


@dataclass(frozen=True)
class Badge:
    """A short tag in the page header."""

    text: str
    tone: Tone = ""


@dataclass(frozen=True)
class PageView:
    """A whole page. ``data_json`` embeds the source data (already safe inside a script element) or is empty."""

    title: str
    heading: str
    subtitle: str
    badges: tuple[Badge, ...]
    banners: tuple[str, ...]
    sections: tuple[SectionView, ...]
    data_json: Markup = field(default_factory=Markup)
    data_name: str = ""


# ---------------------------------------------------------------------------------------------------------------
# Rendering

@cache
def environment() -> Environment:
    """The one Jinja environment: templates from dgprofile.templates, autoescaped, strict about undefined names."""
    return Environment(loader=PackageLoader("dgprofile.templates", ""), autoescape=True,
                       undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)


def render_page(page: PageView) -> str:
    """The HTML text of a page."""
    return environment().get_template("page.html.j2").render(page=page)


def embed_json(value: object) -> Markup:
    """JSON text safe inside a <script type="application/json"> element (no '<', '>', '&' left raw)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return Markup(text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


# ---------------------------------------------------------------------------------------------------------------
# Formatting helpers shared by the pages

def speedup_text(value: float | Unavailable) -> str:
    """``5.1x`` for a speedup; ``0.22x`` stays a ratio (the words come from ``speedup_words``)."""
    if isinstance(value, Unavailable):
        return f"unavailable ({value.reason})"
    return f"{value:.2f}x" if value < 1 else f"{value:.1f}x"


def speedup_words(value: float | Unavailable) -> str:
    """The speedup in words: 'DiffusionGemma is 5.1x faster' / '4.5x slower' / 'about even'."""
    if isinstance(value, Unavailable):
        return f"no speedup could be predicted ({value.reason})"
    if 0.95 <= value <= 1.05:
        return "DiffusionGemma is about as fast as autoregressive Gemma 4"
    if value > 1:
        return f"DiffusionGemma is {value:.1f}x faster than autoregressive Gemma 4"
    return f"DiffusionGemma is {1 / value:.1f}x slower than autoregressive Gemma 4"


def band_text(low: float | Unavailable, high: float | Unavailable) -> str:
    """An uncertainty band, e.g. '4.3x to 5.9x'."""
    if isinstance(low, Unavailable) or isinstance(high, Unavailable):
        return "band unavailable"
    return f"{speedup_text(low)} to {speedup_text(high)}"


def number_key(value: float | int | Unavailable) -> str:
    """A sort key for a numeric cell (empty for unavailable, which sorts last)."""
    return "" if isinstance(value, Unavailable) else repr(float(value))


def tokens_per_s_text(value: float | Unavailable) -> str:
    """A decoding rate."""
    if isinstance(value, Unavailable):
        return f"unavailable ({value.reason})"
    return f"{value:,.0f} tok/s" if value >= 100 else f"{value:.3g} tok/s"


def scenario_text(scenario: Scenario) -> str:
    """A scenario in one line."""
    return (f"{scenario.workload}, {scenario.precision}, concurrency {scenario.concurrency}, engine "
            f"{scenario.engine}: {scenario.prompt_tokens} prompt -> {scenario.output_tokens} output tokens, "
            f"{scenario.steps_per_canvas:.3g} denoising steps per canvas")


def verdict_tone(verdict: str) -> Tone:
    """The CSS tone of a verdict class."""
    return verdict if verdict in VERDICT_LABELS else "unknown"  # type: ignore[return-value]


def unavailable_notice(what: str, value: Unavailable) -> NoticeView:
    """The block a section shows when its data is missing."""
    return NoticeView(text=f"{what} unavailable: {value.reason}.")


def primary_accelerator(machine: Machine) -> Accelerator | None:
    """The device the run measured or predicted for: the first described accelerator."""
    described = [a for a in machine.accelerators if not isinstance(a, FailedDevice)]
    return described[0] if described else None


def hardware_name(machine: Machine | Unavailable, predicted_for: str = "") -> str:
    """The machine's hardware model for grouping and headings: its first accelerator, else its CPU; for a file
    with no machine description (a `predict` run), the hardware the prediction is for."""
    if isinstance(machine, Unavailable):
        return predicted_for or "unknown machine"
    device = primary_accelerator(machine)
    if device is not None:
        return device.name
    return f"CPU only: {plain_text(machine.cpu.model)}"


def memory_class_text(machine: Machine | Unavailable, predicted_class: str = "") -> str:
    """The unified-memory class of the primary accelerator ('discrete', 'shared-physical', ...) or 'CPU only'."""
    if isinstance(machine, Unavailable):
        return predicted_class or "unknown"
    device = primary_accelerator(machine)
    return device.memory_class.kind if device is not None else "CPU only"


def host_name(machine: Machine | Unavailable, run_label: str) -> str:
    """The host a result describes; a `predict` run has none, and is named by its label."""
    if isinstance(machine, Machine):
        return machine.identity.hostname
    return f"predicted: {run_label}" if run_label else "unknown host"


def result_hardware(result: ResultFile) -> tuple[str, str]:
    """(hardware model, unified-memory class) of a result, from its machine or else from its predictions."""
    p = result.predictions
    name = p.ceilings.device_name if isinstance(p, Predictions) else ""
    kind = p.ceilings.memory_class if isinstance(p, Predictions) else ""
    return hardware_name(result.machine, name), memory_class_text(result.machine, kind)


def timing_cells(t: Timing | Unavailable) -> tuple[Cell, ...]:
    """Median, IQR, CV, samples and flags of a timing, as four cells."""
    if isinstance(t, Unavailable):
        return (Cell(f"not timed ({t.reason})"), Cell(""), Cell(""), Cell(""))
    flags = "; ".join(f"{f.code}: {f.message}" for f in t.unstable) or "stable"
    return (Cell(seconds_text(t.median_seconds), number_key(t.median_seconds)),
            Cell(f"{seconds_text(t.iqr_seconds)} (CV {t.coefficient_of_variation * 100:.1f}%)",
                 number_key(t.coefficient_of_variation)),
            Cell(f"{t.samples} x {t.loops} loops, {t.timer}"),
            Cell(flags, tone="warning" if t.unstable else ""))


TIMING_HEADERS = ("median", "IQR (CV)", "samples", "stability")


# ---------------------------------------------------------------------------------------------------------------
# The result page (`dgprofile check`)

def render_result_html(result: ResultFile) -> str:
    """The self-contained HTML page of one result file: verdict, machine, limits, charts, basis, verification."""
    return render_page(result_page(result))


def result_page(result: ResultFile) -> PageView:
    """The view-model of the result page."""
    predictions = result.predictions
    headline = predictions.headline if isinstance(predictions, Predictions) else None
    sections = (
        _verdict_section(predictions),
        _machine_section(result.machine),
        _limits_section(result.limits),
        _roofline_section(result.limits, result.passes, predictions),
        _speedup_section(predictions),
        _passes_section(result.passes, predictions),
        _memory_section(predictions),
        _basis_section(result),
        _verify_section(result.machine, predictions),
    )
    host = host_name(result.machine, result.run.label)
    hardware, memory_class = result_hardware(result)
    origin = result.run.origin
    badges = [Badge("measured on this machine" if origin == "measured" else "predicted: nothing measured",
                    "" if origin == "measured" else "warning"),
              Badge(memory_class)]
    if headline is not None:
        badges.insert(0, Badge(VERDICT_LABELS.get(headline.verdict, headline.verdict), verdict_tone(headline.verdict)))
    banners = tuple(f"Incomplete run: {reason}" for reason in result.run.incomplete_reasons) or (
        ("Incomplete run.",) if result.run.status == "incomplete" else ())
    label = f" ({result.run.label})" if result.run.label and isinstance(result.machine, Machine) else ""
    return PageView(
        title=f"dgprofile: {hardware} on {host}",
        heading=f"DiffusionGemma vs Gemma 4 on {hardware}",
        subtitle=(f"{host}{label} · `{' '.join(result.run.command)}` · {result.created_at} · dgprofile "
                  f"{result.tool_version}, schema {result.schema_version}"),
        badges=tuple(badges), banners=banners, sections=sections,
        data_json=embed_json(to_json(result)), data_name="dgprofile-result")


def _verdict_section(predictions: Predictions | Unavailable) -> SectionView:
    intro = ("The headline scenario: interactive use at concurrency 1, the engine a user of this platform would run, "
             "the best precision that fits.")
    if isinstance(predictions, Unavailable):
        return SectionView("verdict", "Verdict", intro, (unavailable_notice("Predictions", predictions),))
    h = predictions.headline
    source = ("this machine's measured limits" if predictions.origin == "measured"
              else "datasheet limits (nothing was measured)")
    blocks: list[Block] = [VerdictView(
        tone=verdict_tone(predictions.verdict), label=VERDICT_LABELS.get(predictions.verdict, predictions.verdict),
        summary=f"{speedup_words(h.speedup)}.",
        band=f"{VERDICT_MEANINGS.get(predictions.verdict, predictions.verdict).capitalize()}. Speedup "
             f"{speedup_text(h.speedup)}, uncertainty band {band_text(h.speedup_low, h.speedup_high)}; predicted "
             f"from {source}.",
        scenario=f"{scenario_text(h.scenario)}. Engine: {predictions.engine_reason}.",
        reasons=predictions.reasons, advice=predictions.advice)]
    blocks.append(_modes_table(h))
    return SectionView("verdict", "Verdict", intro, tuple(blocks))


def _modes_table(p: Prediction) -> TableView:
    rows = []
    metrics = (("tokens/s per request", "tokens_per_s", tokens_per_s_text),
               ("tokens/s, all requests", "aggregate_tokens_per_s", tokens_per_s_text),
               ("time to first token", "ttft_s", seconds_text),
               ("time to first useful draft", "first_draft_s", seconds_text),
               ("total latency", "total_latency_s", seconds_text),
               ("memory needed", "memory_bytes", bytes_text),
               ("time per pass", "pass_seconds", seconds_text))
    for label, attr, fmt in metrics:
        cells = [Cell(label)]
        for mode in (p.diffusion, p.autoregressive):
            cells.append(Cell(fmt(mode) if isinstance(mode, Unavailable) else fmt(getattr(mode, attr))))
        rows.append(RowView(tuple(cells)))
    return TableView("Both models in the headline scenario", ("", "DiffusionGemma", "Gemma 4 (AR)"), tuple(rows))


def _accelerator_facts(device: Accelerator) -> FactsView:
    if isinstance(device, FailedDevice):
        return FactsView(f"Device {device.index} ({device.vendor})", (("status", f"failed: {device.reason}"),))
    mc = device.memory_class
    items: list[tuple[str, str]] = [
        ("unified-memory class", mc.kind),
        ("memory usable by the accelerator", f"{bytes_text(mc.usable_bytes)} ({mc.usable_basis})"),
        ("classified from", "; ".join(mc.signals) or "no signals recorded"),
        ("theoretical bandwidth", f"{bandwidth_text(device.theoretical_bandwidth_bytes_per_s)} "
                                  f"({device.theoretical_bandwidth_basis})"),
    ]
    if isinstance(device, NvidiaGpu):
        items += [("memory", bytes_text(device.memory_total_bytes)),
                  ("datasheet bandwidth", bandwidth_text(device.datasheet_bandwidth_bytes_per_s)),
                  ("architecture", f"{plain_text(device.architecture)}, compute capability "
                                   f"{plain_text(device.compute_capability)}"),
                  ("SMs", f"{plain_text(device.sm_count)} at up to {_hz(device.sm_clock_max_hz)}"),
                  ("driver / CUDA", f"{plain_text(device.driver_version)} / {plain_text(device.cuda_driver_version)}"),
                  ("power limit", _watts(device.power_limit_w)),
                  ("PCIe", f"gen {plain_text(device.pcie_generation)} x{plain_text(device.pcie_width)}"),
                  ("MIG / ECC", f"{plain_text(device.mig_mode)} / {plain_text(device.ecc_mode)}"),
                  ("utilisation at probe time", _percent_int(device.utilization_percent))]
    elif isinstance(device, AppleGpu):
        items += [("chip", f"{device.chip}, {plain_text(device.gpu_cores)} GPU cores"),
                  ("unified memory", bytes_text(device.unified_memory_bytes)),
                  ("recommended working set", bytes_text(device.recommended_working_set_bytes)),
                  ("macOS", plain_text(device.macos_version)),
                  ("verified on hardware", plain_text(device.verified_on_hardware))]
    items.append(("datasheet entry", plain_text(device.spec_id)))
    items += [("warning", w) for w in device.warnings]
    return FactsView(f"Device {device.index}: {device.name}", tuple(items))


def _hz(value: float | Unavailable) -> str:
    return plain_text(value) if isinstance(value, Unavailable) else f"{value / 1e9:.2f} GHz"


def _watts(value: float | Unavailable) -> str:
    return plain_text(value) if isinstance(value, Unavailable) else f"{value:.0f} W"


def _percent_int(value: int | Unavailable) -> str:
    return plain_text(value) if isinstance(value, Unavailable) else f"{value}%"


def _machine_section(machine: Machine | Unavailable) -> SectionView:
    intro = "What the probes found. The unified-memory class decides which memory figure is real."
    if isinstance(machine, Unavailable):
        return SectionView("machine", "Machine", intro, (unavailable_notice("The machine description", machine),))
    cpu, sw = machine.cpu, machine.software
    host = machine.identity.hostname + (" (anonymized)" if machine.identity.anonymized else "")
    blocks: list[Block] = [FactsView("Host", (
        ("hostname", host),
        ("CPU", f"{plain_text(cpu.model)} ({cpu.architecture}), {plain_text(cpu.physical_cores)} cores / "
                f"{plain_text(cpu.logical_cores)} threads"),
        ("inference flags", ", ".join(cpu.inference_flags) or "none found"),
        ("RAM", f"{bytes_text(cpu.ram_total_bytes)} total, {bytes_text(cpu.ram_available_bytes)} available"),
        ("CPU memory bandwidth", f"{bandwidth_text(cpu.theoretical_bandwidth_bytes_per_s)} "
                                 f"({cpu.theoretical_bandwidth_basis})"),
        ("OS", f"{sw.os_name} {sw.os_release}, Python {sw.python_version}"),
        ("torch", f"{plain_text(sw.torch_version)} (CUDA {plain_text(sw.torch_cuda_version)})"),
        ("vLLM / transformers", f"{plain_text(sw.vllm_version)} / {plain_text(sw.transformers_version)}"),
    ))]
    blocks += [_accelerator_facts(device) for device in machine.accelerators]
    if not machine.accelerators:
        blocks.append(NoticeView("No accelerator found: predictions, if any, are for the CPU."))
    if machine.warnings:
        blocks.append(ListView("Warnings", machine.warnings, tone="warning"))
    return SectionView("machine", "Machine", intro, tuple(blocks))


def _limits_section(limits: Limits | Unavailable) -> SectionView:
    intro = ("Measured ceilings with their spread: median of repeated samples, interquartile range and coefficient "
             "of variation; unstable measurements are flagged with advice.")
    if isinstance(limits, Unavailable):
        return SectionView("limits", "Measured limits", intro, (unavailable_notice("Measured limits", limits),))
    summary = [("device", f"{limits.device_name} ({limits.device})"),
               ("streaming read", bandwidth_text(limits.stream_read_bytes_per_s)),
               ("copy", bandwidth_text(limits.copy_bytes_per_s)),
               ("launch floor", seconds_text(limits.launch_floor_seconds))]
    summary += [(f"peak {dtype} matmul", flops_text(rate)) for dtype, rate in limits.peak_flops_per_s.items()]
    summary += [(f"{dtype} ridge", f"{ridge:.0f} FLOP/byte; extra tokens stop being free at about "
                                   f"{limits.ridge_tokens.get(dtype, 'an unmeasured count of')} tokens per pass")
                for dtype, ridge in limits.ridge_flop_per_byte.items()]
    blocks: list[Block] = [FactsView("Summary", tuple(summary))]
    bandwidth_rows = tuple(
        RowView((Cell(f.name), Cell(f.method), Cell(bandwidth_text(f.bytes_per_s), number_key(f.bytes_per_s)),
                 Cell(percent_text(f.fraction_of_theoretical)), Cell(bytes_text(f.buffer_bytes)),
                 *timing_cells(f.timing)), tone="warning" if f.timing.unstable else "")
        for f in (*limits.bandwidth, *limits.host_transfer))
    blocks.append(TableView("Memory bandwidth", ("pattern", "method", "rate", "of theoretical", "buffer",
                                                 *TIMING_HEADERS), bandwidth_rows))
    matmul_rows = tuple(
        RowView((Cell(m.label), Cell(m.dtype), Cell(f"{m.m} x {m.k} @ {m.k} x {m.n}"),
                 Cell(flops_text(m.flops_per_s), number_key(m.flops_per_s)), *timing_cells(m.timing)),
                tone="warning" if m.timing.unstable else "")
        for m in limits.matmul)
    blocks.append(TableView("Matrix products", ("shape", "dtype", "m x k @ k x n", "rate", *TIMING_HEADERS),
                            matmul_rows))
    latency_rows = tuple(RowView((Cell(x.name), Cell(seconds_text(x.seconds)), *timing_cells(x.timing)))
                         for x in limits.latency)
    blocks.append(TableView("Latency floor", ("operation", "per call", *TIMING_HEADERS), latency_rows))
    advice = _instability_advice(limits)
    if advice:
        blocks.append(ListView("Unstable measurements", advice, tone="warning"))
    if limits.notes:
        blocks.append(ListView("Notes", limits.notes))
    return SectionView("limits", "Measured limits", intro, tuple(blocks))


def _instability_advice(limits: Limits) -> tuple[str, ...]:
    timings = [(f.name, f.timing) for f in (*limits.bandwidth, *limits.host_transfer)]
    timings += [(m.label, m.timing) for m in limits.matmul] + [(x.name, x.timing) for x in limits.latency]
    return tuple(dict.fromkeys(f"{name}: {flag.message}; {flag.advice}" for name, t in timings
                               for flag in t.unstable))


def _headline_precision(headline: Prediction | None, passes: PassTimes) -> str:
    measured = {p.precision for p in passes.passes}
    if headline is not None and headline.scenario.precision in measured:
        return headline.scenario.precision
    return "bf16" if "bf16" in measured else sorted(measured)[0]


def _pass(passes: PassTimes, kind: str, precision: str, concurrency: int) -> PassMeasurement | None:
    return next((p for p in passes.passes
                 if p.pass_kind == kind and p.precision == precision and p.concurrency == concurrency), None)


def _roofline_section(limits: Limits | Unavailable, passes: PassTimes | Unavailable,
                      predictions: Predictions | Unavailable) -> SectionView:
    intro = ("Attainable FLOP/s against arithmetic intensity (FLOP per byte moved). Left of the ridge a pass is bound "
             "by memory bandwidth, right of it by compute. An AR step sits far left; a 256-token denoise pass moves "
             "right with every concurrent request.")
    headline = predictions.headline if isinstance(predictions, Predictions) else None
    if isinstance(limits, Limits) and isinstance(passes, PassTimes) and passes.passes and \
            not isinstance(limits.stream_read_bytes_per_s, Unavailable) and limits.peak_flops_per_s:
        return SectionView("roofline", "Roofline", intro, (_measured_roofline(limits, passes, headline),))
    if isinstance(predictions, Predictions) and predictions.ceilings.peak_flops_per_s:
        missing = limits.reason if isinstance(limits, Unavailable) else (
            passes.reason if isinstance(passes, Unavailable) else "the run has no measured passes")
        return SectionView("roofline", "Roofline", intro, (
            NoticeView(f"Measured roofline unavailable: {missing}. Shown instead: the {predictions.ceilings.source} "
                       "limits the prediction used, and its predicted passes.", tone="warning"),
            _predicted_roofline(predictions)))
    for what, value in (("Measured limits", limits), ("Measured passes", passes), ("Predictions", predictions)):
        if isinstance(value, Unavailable):
            return SectionView("roofline", "Roofline", intro, (unavailable_notice(what, value),))
    return SectionView("roofline", "Roofline", intro, (NoticeView(
        "Roofline unavailable: the run has no streaming bandwidth, matmul peak or passes."),))


ROOF_TOLERANCE = 1.05  # a point this far above the roof is called out, not rounding noise


def _peak_dtype(peaks: dict[str, float], wanted: Sequence[str]) -> str:
    """The first wanted dtype that has a measured peak; else the fastest, so no measured point can sit above the
    roof merely because its format has no peak of its own (int4 computed in fp32 on a CPU)."""
    for dtype in wanted:
        if dtype in peaks:
            return dtype
    return max(peaks, key=peaks.__getitem__)


def _roofline_chart(*, bandwidth: float, peaks: dict[str, float], dtype: str, points: list[charts.ChartPoint],
                    what: str) -> ChartView:
    ridge = peaks[dtype] / bandwidth
    svg = charts.roofline_svg(title=f"Roofline: {dtype} matmul peak over {what} bandwidth",
                              bandwidth_bytes_per_s=bandwidth, peak_flops_per_s=peaks[dtype], points=points,
                              roof_label=f"roof: {what} bandwidth, {dtype} peak")
    caption = (f"Ridge at {ridge:.0f} FLOP/byte: {flops_text(peaks[dtype])} over {bandwidth_text(bandwidth)}. "
               "Points sit at each pass's achieved rate; c is the number of concurrent requests in one pass.")
    above = [p.label for p in points if p.y > ROOF_TOLERANCE * min(bandwidth * p.x, peaks[dtype])]
    if above:
        caption += (f" Above the roof: {', '.join(above)}. The pass ran faster than the {dtype} matmul peak measured "
                    "at the square shape, so that peak understates this machine (a different kernel path or shape).")
    return ChartView(Markup(svg), caption)


def _measured_roofline(limits: Limits, passes: PassTimes, headline: Prediction | None) -> ChartView:
    precision = _headline_precision(headline, passes)
    concurrencies = sorted({p.concurrency for p in passes.passes})
    points = []
    for kind, cs in (("ar-step", concurrencies[:1]), ("dg-denoise", concurrencies)):
        for c in cs:
            p = _pass(passes, kind, precision, c)
            if p is not None and p.bytes_moved > 0 and p.flops > 0:
                points.append(charts.ChartPoint(p.flops / p.bytes_moved, p.achieved_flops_per_s,
                                                f"{PASS_LABELS[kind]}, {precision}, c={c} (measured)"))
    assert not isinstance(limits.stream_read_bytes_per_s, Unavailable)
    denoise = _pass(passes, "dg-denoise", precision, concurrencies[0])
    formats = [denoise.compute_format] if denoise is not None and denoise.compute_format else []
    dtype = _peak_dtype(limits.peak_flops_per_s, [*formats, precision])
    return _roofline_chart(bandwidth=limits.stream_read_bytes_per_s, peaks=limits.peak_flops_per_s, dtype=dtype,
                           points=points, what="measured streaming-read")


def _predicted_roofline(predictions: Predictions) -> ChartView:
    h = predictions.headline
    points = []
    for mode in (h.autoregressive, h.diffusion):
        if isinstance(mode, Unavailable):
            continue
        for p in mode.passes:
            if p.pass_kind in ("ar-step", "dg-denoise") and p.bytes_moved > 0 and p.flops > 0 and p.seconds > 0:
                points.append(charts.ChartPoint(p.flops / p.bytes_moved, p.flops / p.seconds,
                                                f"{PASS_LABELS[p.pass_kind]}, {h.scenario.precision}, "
                                                f"c={h.scenario.concurrency} (predicted)"))
    c = predictions.ceilings
    return _roofline_chart(bandwidth=c.bandwidth_bytes_per_s, peaks=c.peak_flops_per_s,
                           dtype=_peak_dtype(c.peak_flops_per_s, [h.scenario.precision, "bf16", "fp16"]),
                           points=points, what=f"{c.source}")


def _speedup_section(predictions: Predictions | Unavailable) -> SectionView:
    intro = ("Predicted DiffusionGemma/Gemma 4 speedup as one quantity varies and the rest of the headline scenario "
             "stays fixed. An output shorter than a canvas still pays a whole 256-token canvas; concurrent requests "
             "share one pass, which turns compute-bound.")
    if isinstance(predictions, Unavailable):
        return SectionView("speedup", "Speedup", intro, (unavailable_notice("Predictions", predictions),))
    blocks: list[Block] = [_curve_chart(c) for c in predictions.curves]
    if not predictions.curves:
        blocks.append(NoticeView("Speedup curves unavailable: the predictions hold none."))
    if predictions.matrix:
        blocks.append(_matrix_table(predictions.matrix))
    return SectionView("speedup", "Speedup", intro, tuple(blocks))


CURVE_TITLES = {"speedup-vs-output-tokens": "Speedup against output length",
                "speedup-vs-concurrency": "Speedup against concurrency"}


def _curve_chart(curve: Curve) -> Block:
    title = CURVE_TITLES.get(curve.name, curve.name)
    s = curve.scenario
    fixed = f"{s.workload}, {s.precision}, {s.engine}" + (
        "" if curve.name == "speedup-vs-concurrency" else f", concurrency {s.concurrency}")
    points = [p for p in curve.points if not isinstance(p.speedup, Unavailable)]
    if len({p.x for p in points}) < 2:
        missing = "; ".join(sorted({p.speedup.reason for p in curve.points if isinstance(p.speedup, Unavailable)}))
        return NoticeView(f"{title}: unavailable (fewer than two points could be predicted{': ' + missing if missing else ''}).")

    def label(p: CurvePoint) -> str:
        return (f"{curve.x_label} {p.x:g}: {speedup_text(p.speedup)} "
                f"({band_text(p.speedup_low, p.speedup_high)})")

    series = [charts.Series("predicted speedup", tuple(charts.ChartPoint(p.x, p.speedup, label(p)) for p in points))]
    for name, attr in (("band, low", "speedup_low"), ("band, high", "speedup_high")):
        band = [p for p in points if not isinstance(getattr(p, attr), Unavailable)]
        if band:
            series.append(charts.Series(name, tuple(charts.ChartPoint(p.x, getattr(p, attr), label(p)) for p in band),
                                        dashed=True, colour=charts.BAND_COLOUR))
    svg = charts.line_svg(title=f"{title} ({fixed})", x_title=curve.x_label, y_title="speedup (x)",
                          series=series, log2_x=True, reference=(1.0, "equal speed (1x)"),
                          x_formatter=lambda v: f"{v:.0f}", y_formatter=lambda v: f"{v:.2g}x")
    return ChartView(Markup(svg), f"{title}, {fixed}. Above the dashed 1x line DiffusionGemma is faster.")


def _matrix_table(matrix: Sequence[Prediction]) -> TableView:
    rows = []
    for p in matrix:
        s = p.scenario
        dg, ar = p.diffusion, p.autoregressive
        rows.append(RowView((
            Cell(s.workload), Cell(s.precision), Cell(str(s.concurrency), number_key(s.concurrency)),
            Cell(s.engine), Cell(speedup_text(p.speedup), number_key(p.speedup), tone=verdict_tone(p.verdict)),
            Cell(band_text(p.speedup_low, p.speedup_high), number_key(p.speedup_low)),
            Cell(VERDICT_LABELS.get(p.verdict, p.verdict), tone=verdict_tone(p.verdict)),
            Cell(tokens_per_s_text(dg) if isinstance(dg, Unavailable) else tokens_per_s_text(dg.tokens_per_s),
                 "" if isinstance(dg, Unavailable) else number_key(dg.tokens_per_s)),
            Cell(tokens_per_s_text(ar) if isinstance(ar, Unavailable) else tokens_per_s_text(ar.tokens_per_s),
                 "" if isinstance(ar, Unavailable) else number_key(ar.tokens_per_s)),
            Cell("; ".join(p.reasons)),
        ), filter_text=f"{s.workload} {s.precision} {s.engine} {p.verdict}"))
    return TableView("The scenario matrix (click a heading to sort)",
                     ("workload", "precision", "concurrency", "engine", "speedup", "band", "verdict",
                      "DG tok/s", "AR tok/s", "reasons"), tuple(rows), sortable=True, filterable=True,
                     table_id="matrix-table", collapsed_summary=f"All {len(rows)} predicted scenarios")


def _passes_section(passes: PassTimes | Unavailable, predictions: Predictions | Unavailable) -> SectionView:
    intro = ("Each decode pass at the real 26B-A4B shapes, split into the terms on its critical path: streaming the "
             "weights, compute beyond that, the engine's fixed overhead and the sampler.")
    blocks: list[Block] = []
    if isinstance(predictions, Predictions):
        blocks.append(_predicted_breakdown(predictions.headline))
    if isinstance(passes, Unavailable):
        blocks.append(unavailable_notice("Measured passes", passes))
    elif not passes.passes:
        blocks.append(NoticeView("No passes were measured."))
    else:
        headline = predictions.headline if isinstance(predictions, Predictions) else None
        if not isinstance(predictions, Predictions):
            blocks.append(_measured_breakdown(passes, _headline_precision(headline, passes)))
        blocks.append(_passes_table(passes))
        if passes.methods:
            blocks.append(ListView("How the passes were measured", passes.methods))
        if passes.reductions:
            blocks.append(ListView("What the benchmark reduced to fit this machine", passes.reductions,
                                   tone="warning"))
    return SectionView("passes", "Pass times", intro, tuple(blocks))


def _breakdown_chart(title: str, labels: list[str], parts: list[dict[str, float]], caption: str) -> ChartView:
    names = list(dict.fromkeys(k for part in parts for k in part))
    longest = max((sum(part.values()) for part in parts), default=0.0)
    scale, unit = (1e3, "milliseconds") if longest < 2 else (1.0, "seconds")
    stacks = {name: [part.get(name, 0.0) * scale for part in parts] for name in names}
    svg = charts.stacked_bar_svg(title=title, categories=labels, stacks=stacks, value_title=unit,
                                 value_formatter=lambda v: f"{v:,.0f}" if v >= 1000 else f"{v:.3g}",
                                 colours=TERM_COLOURS)
    return ChartView(Markup(svg), caption)


def _predicted_breakdown(h: Prediction) -> Block:
    estimates: list[tuple[str, PassEstimate]] = [
        (model, p) for model, mode in (("Gemma 4", h.autoregressive), ("DiffusionGemma", h.diffusion))
        if not isinstance(mode, Unavailable) for p in mode.passes]
    # Prefill runs once per request and would dwarf the per-token passes on the same axis: it goes in the caption.
    decode = [(model, p) for model, p in estimates if p.pass_kind != "prefill"]
    if not decode:
        return NoticeView("Per-pass breakdown unavailable: the headline prediction holds no pass estimates.")
    labels = [f"{model}: {PASS_LABELS.get(p.pass_kind, p.pass_kind)} (bound by {p.bound_by})" for model, p in decode]
    prefill = "; ".join(f"{model} prefill {seconds_text(p.seconds)}" for model, p in estimates
                        if p.pass_kind == "prefill")
    s = h.scenario
    return _breakdown_chart(f"Time per pass, {s.precision}, concurrency {s.concurrency}, {s.engine}", labels,
                            [p.critical_seconds for _, p in decode],
                            "Predicted for the headline scenario; the segments are the terms on each pass's critical "
                            "path and add up to its time. Passes per request: " + ", ".join(
                                f"{model} {_count(p.count_per_request)} x {PASS_LABELS.get(p.pass_kind, p.pass_kind)}"
                                for model, p in estimates) + (f". Once per request: {prefill}." if prefill else "."))


def _count(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def _measured_breakdown(passes: PassTimes, precision: str) -> Block:
    chosen = [p for kind in PASS_LABELS if (p := _pass(passes, kind, precision, 1)) is not None]
    if not chosen:
        return NoticeView(f"Per-pass breakdown unavailable: no {precision} pass at concurrency 1 was measured.")
    return _breakdown_chart(f"Time per pass, {precision}, concurrency 1 (measured)",
                            [PASS_LABELS[p.pass_kind] for p in chosen], [p.breakdown_seconds for p in chosen],
                            "Measured passes split by the benchmark into its named terms.")


def _passes_table(passes: PassTimes) -> TableView:
    rows = tuple(
        RowView((Cell(PASS_LABELS.get(p.pass_kind, p.pass_kind)), Cell(p.precision),
                 Cell(str(p.concurrency), number_key(p.concurrency)),
                 Cell(seconds_text(p.seconds), number_key(p.seconds)),
                 *timing_cells(p.timing)[1:2],
                 Cell(bytes_text(p.bytes_moved), number_key(p.bytes_moved)),
                 Cell(f"{p.flops / 1e12:.3g} TFLOP", number_key(p.flops)),
                 Cell(bandwidth_text(p.achieved_bytes_per_s), number_key(p.achieved_bytes_per_s)),
                 Cell(flops_text(p.achieved_flops_per_s), number_key(p.achieved_flops_per_s)),
                 Cell(percent_text(p.fraction_of_bandwidth_floor), number_key(p.fraction_of_bandwidth_floor)),
                 Cell(percent_text(p.fraction_of_compute_floor), number_key(p.fraction_of_compute_floor)),
                 Cell(percent_text(p.fraction_of_roofline_floor), number_key(p.fraction_of_roofline_floor)),
                 Cell(p.basis if p.basis.startswith(("measured", "modelled")) else
                      f"{'measured' if p.measured else 'modelled'}: {p.basis}")),
                tone="" if p.measured else "muted")
        for p in passes.passes)
    return TableView(f"Measured passes on {passes.device} (full 30-layer estimates)", (
        "pass", "precision", "concurrency", "time", "IQR (CV)", "bytes moved", "FLOPs", "achieved bandwidth",
        "achieved FLOP/s", "of bandwidth floor", "of compute floor", "of roofline floor", "basis"), rows, sortable=True,
        table_id="passes-table", collapsed_summary=f"All {len(rows)} measured passes")


def usable_memory(machine: Machine | Unavailable) -> int | Unavailable:
    """The memory the primary accelerator can really use (RAM available for a CPU-only machine)."""
    if isinstance(machine, Unavailable):
        return machine
    device = primary_accelerator(machine)
    return device.memory_class.usable_bytes if device is not None else machine.cpu.ram_available_bytes


def _fit_text(fits: bool, engine_runs_it: bool) -> Cell:
    if not engine_runs_it:
        return Cell("engine cannot run it", tone="cannot-run")
    return Cell("fits", tone="applies") if fits else Cell("does not fit", tone="cannot-run")


def _memory_section(predictions: Predictions | Unavailable) -> SectionView:
    intro = ("Memory each precision needs (weights, KV cache, DiffusionGemma's sampler and self-conditioning "
             "buffers, activation headroom) against what the accelerator can really use.")
    if isinstance(predictions, Unavailable):
        return SectionView("memory", "Memory fit", intro, (unavailable_notice("Predictions", predictions),))
    if not predictions.memory:
        return SectionView("memory", "Memory fit", intro, (NoticeView("Memory fit unavailable: none was predicted."),))
    rows = tuple(RowView((
        Cell(m.precision), Cell(f"{m.gpus} x {m.concurrency}"),
        Cell(bytes_text(m.weights_bytes), number_key(m.weights_bytes)),
        Cell(bytes_text(m.diffusion_needed_bytes), number_key(m.diffusion_needed_bytes)),
        Cell(bytes_text(m.autoregressive_needed_bytes), number_key(m.autoregressive_needed_bytes)),
        Cell(bytes_text(m.usable_bytes), number_key(m.usable_bytes)),
        _fit_text(m.fits_diffusion, m.engine_runs_it), _fit_text(m.fits_autoregressive, m.engine_runs_it),
        Cell(str(m.max_diffusion_concurrency), number_key(m.max_diffusion_concurrency)), Cell(m.note)))
        for m in predictions.memory)
    gib = float(2 ** 30)
    parts = {"weights": [m.weights_bytes / gib for m in predictions.memory],
             "KV cache": [m.diffusion_kv_cache_bytes / gib for m in predictions.memory],
             "DG sampler and self-conditioning": [m.diffusion_buffers_bytes / gib for m in predictions.memory],
             "activation headroom": [m.activation_headroom_bytes / gib for m in predictions.memory]}
    # The usable memory is drawn as its own bar, so a need longer than it visibly does not fit.
    usable = max(m.usable_bytes for m in predictions.memory)
    parts = {name: [*values, 0.0] for name, values in parts.items()}
    parts["usable by the accelerator"] = [0.0] * len(predictions.memory) + [usable / gib]
    svg = charts.stacked_bar_svg(title="DiffusionGemma memory need per precision, against usable memory (GiB)",
                                 categories=[*(m.precision for m in predictions.memory), "usable here"],
                                 stacks=parts, value_title="GiB", value_formatter=lambda v: f"{v:.1f} GiB",
                                 colours=TERM_COLOURS)
    return SectionView("memory", "Memory fit", intro, (
        TableView("Per precision", ("precision", "GPUs x requests", "weights", "DiffusionGemma needs", "Gemma 4 needs",
                                    "usable here", "DiffusionGemma", "Gemma 4", "max DG concurrency", "note"), rows),
        ChartView(Markup(svg), f"What takes the memory, at the concurrency in the table; usable here: "
                               f"{bytes_text(usable)} ({predictions.memory[0].usable_basis}).")))


def _basis_section(result: ResultFile) -> SectionView:
    intro = ("Where every number comes from: measured on this machine, taken from a datasheet, calibrated to "
             "published runs, or assumed.")
    rows: list[RowView] = []
    if isinstance(result.limits, Limits):
        timers = ", ".join(sorted({f.timing.timer for f in result.limits.bandwidth})) or "no timer recorded"
        rows.append(RowView((Cell("bandwidth, matmul rates, latency floor"), Cell("measured"),
                             Cell(f"{result.limits.device_name} ({result.limits.device}), timed with {timers}"))))
    else:
        rows.append(RowView((Cell("limits"), Cell("not measured"), Cell(result.limits.reason))))
    if isinstance(result.passes, PassTimes):
        measured = sum(p.measured for p in result.passes.passes)
        rows.append(RowView((Cell("decode passes"), Cell("measured" if measured else "modelled"),
                             Cell(f"{measured} of {len(result.passes.passes)} passes timed on "
                                  f"{result.passes.device}; the rest modelled from bytes and FLOPs"))))
    if isinstance(result.machine, Machine):
        for device in result.machine.accelerators:
            if isinstance(device, FailedDevice):
                continue
            rows.append(RowView((Cell(f"{device.name}: theoretical bandwidth"), Cell("probed"),
                                 Cell(device.theoretical_bandwidth_basis))))
            rows.append(RowView((Cell(f"{device.name}: usable memory"), Cell("probed"),
                                 Cell(device.memory_class.usable_basis))))
            spec = _spec_sources(device.spec_id)
            if spec:
                rows.append(RowView((Cell(f"{device.name}: datasheet entry"), Cell("datasheet"), Cell(spec))))
    blocks: list[Block] = []
    if isinstance(result.predictions, Predictions):
        p = result.predictions
        rows += [RowView((Cell(b.quantity), Cell(b.kind), Cell(b.source))) for b in p.basis]
        rows.append(RowView((Cell(f"limits the model used ({p.ceilings.device_name})"), Cell(p.ceilings.source),
                             Cell("; ".join(p.ceilings.sources)))))
        blocks.append(TableView("", ("figure", "basis", "source"), tuple(rows)))
        blocks += _calibration_blocks(p)
    else:
        blocks.append(TableView("", ("figure", "basis", "source"), tuple(rows)))
        blocks.append(unavailable_notice("Predictions, and so the calibration behind them,", result.predictions))
    return SectionView("basis", "Basis of the numbers", intro, tuple(blocks))


def _calibration_blocks(p: Predictions) -> list[Block]:
    c = p.calibration
    engines = tuple(RowView((
        Cell(e.engine), Cell(seconds_text(e.pass_floor_seconds)), Cell(seconds_text(e.diffusion_step_overhead_seconds)),
        Cell(percent_text(e.bandwidth_efficiency)), Cell(percent_text(e.compute_efficiency)),
        Cell(", ".join(e.fitted) or "none"), Cell(", ".join(e.runs) or "none"),
        Cell(f"{e.rms_log_residual:.3f}"))) for e in c.engines)
    runs = tuple(RowView((
        Cell(r.run_id), Cell(r.hardware), Cell(r.engine), Cell(speedup_text(r.published_speedup)),
        Cell(speedup_text(r.predicted_speedup)),
        Cell(", ".join(f"{o.name} {o.relative_error * 100:+.0f}%" for o in r.observables)),
        Cell(f"{plain_text(r.published_verdict)} / {r.predicted_verdict}",
             tone="" if r.published_verdict in (r.predicted_verdict,) or isinstance(r.published_verdict, Unavailable)
             else "warning"))) for r in c.runs)
    return [TableView(f"Engine parameters fitted to {c.data_file}", (
                "engine", "pass floor", "overhead per denoise step", "bandwidth efficiency", "compute efficiency", "fitted",
                "runs", "RMS log residual"), engines),
            TableView(f"Published runs reproduced (largest error {c.max_abs_relative_error * 100:.0f}%)", (
                "run", "hardware", "engine", "published speedup", "predicted", "figures (error)",
                "verdict published / predicted"), runs)]


def _spec_sources(spec_id: str | Unavailable) -> str:
    if isinstance(spec_id, Unavailable):
        return ""
    spec = next((s for s in all_specs() if s.id == spec_id), None)
    return f"{spec.name}: {'; '.join(spec.sources)}" if spec is not None else ""


def verify_commands(scenario: Scenario) -> str:
    """The shell commands that measure the scenario on real weights with vLLM, for both models, same settings."""
    steps = max(1, round(scenario.steps_per_canvas))
    max_len = scenario.prompt_tokens + scenario.output_tokens + 256
    quant = " --quantization fp8" if scenario.precision == "fp8" else ""
    seqs = max(4, scenario.concurrency)
    common = (f"--max-num-seqs {seqs} --max-model-len {max_len}{quant} --no-enable-prefix-caching "
              "--gpu-memory-utilization 0.85")
    bench = (f"--dataset-name random --random-input-len {scenario.prompt_tokens} --random-output-len "
             f"{scenario.output_tokens} --ignore-eos --num-prompts {max(100, 20 * scenario.concurrency)} "
             f"--max-concurrency {scenario.concurrency}")
    diffusion = json.dumps({"canvas_length": 256, "max_denoising_steps": steps}, separators=(",", ":"))
    return "\n".join((
        "# 1. DiffusionGemma (vLLM >= 0.24); leave the server running in another terminal",
        f"vllm serve {DG_MODEL} \\",
        f"    {common} \\",
        f"    --diffusion-config '{diffusion}'",
        f"vllm bench serve --model {DG_MODEL} \\",
        f"    {bench}",
        "",
        "# 2. autoregressive Gemma 4 with the same settings (stop the first server first)",
        f"vllm serve {AR_MODEL} \\",
        f"    {common}",
        f"vllm bench serve --model {AR_MODEL} \\",
        f"    {bench}",
    ))


def _verify_section(machine: Machine | Unavailable, predictions: Predictions | Unavailable) -> SectionView:
    intro = "Check the prediction on real weights: serve each model with vLLM and benchmark it with the same settings."
    headline = predictions.headline if isinstance(predictions, Predictions) else None
    if isinstance(machine, Machine):
        vendor = "nvidia" if any(isinstance(a, NvidiaGpu) for a in machine.accelerators) else "other"
    else:
        vendor = predictions.ceilings.vendor if isinstance(predictions, Predictions) else "unknown"
    if headline is None:
        return SectionView("verify", "Verify on real weights", intro, (NoticeView(
            "Verification commands unavailable: there is no predicted scenario to verify."),))
    s = headline.scenario
    notes = [f"Compare the two runs' mean end-to-end latency and output token throughput with the predicted total "
             f"latency and tokens/s above; DiffusionGemma's run also prints a 'Diffusion Decoding' block with the "
             f"denoising steps per canvas (predicted: {s.steps_per_canvas:.3g}).",
             "max_denoising_steps only caps the steps: adaptive stopping may stop a canvas earlier. For exactly "
             f"{round(s.steps_per_canvas)} steps, point --generation-config at a copy of the checkpoint's "
             "generation_config.json with confidence_threshold 0.",
             "TTFT of DiffusionGemma includes the whole first canvas (tokens appear only at its commit)."]
    if s.precision not in ("bf16", "fp8"):
        notes.insert(0, f"The scenario's precision is {s.precision}: serve a {s.precision} checkpoint of each model "
                        "instead of the original weights (the commands above run bf16).")
    if vendor != "nvidia":
        notes.insert(0, f"This machine has no NVIDIA GPU, and the prediction is for the {s.engine} engine: the vLLM "
                        "commands verify the same scenario on a CUDA machine.")
    return SectionView("verify", "Verify on real weights", intro, (
        CodeView(f"vLLM, {scenario_text(s)}", verify_commands(s)), ListView("Reading the results", tuple(notes))))
