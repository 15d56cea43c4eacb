"""The result page of one result file (`dgprofile check` writes it): verdict, machine, performance sections,
the basis of every number, and the commands that verify the prediction on real weights.

Python decides what the page says and formats every number (``dgprofile.pages.views``); the templates only lay
the blocks out (``dgprofile.pages.environment``). The performance sections are in
``dgprofile.pages.result_performance``.
"""

from __future__ import annotations

import json

from dgprofile.analysis.figures import (
    datasheet_sources,
    evidence,
    figure_text,
    half_precision,
    hardware_name,
    host_name,
    memory_class_text,
    ridge,
    stream_bandwidth,
    usable_accelerator_memory,
)
from dgprofile.model.speedup import USEFUL_DRAFT_DEFINITION
from dgprofile.pages.environment import embed_json, render_page
from dgprofile.pages.measured_section import measured_section
from dgprofile.pages.multi_gpu_section import multi_gpu_section
from dgprofile.pages.result_performance import (
    limits_section,
    memory_section,
    passes_section,
    roofline_section,
    speedup_section,
)
from dgprofile.pages.views import (
    Badge,
    Block,
    Cell,
    CodeView,
    FactsView,
    ListView,
    NoticeView,
    PageView,
    RowView,
    SectionView,
    TableView,
    VerdictView,
    unavailable_notice,
)
from dgprofile.records.codec import to_json
from dgprofile.records.limits import Limits
from dgprofile.records.machine import (
    Accelerator,
    AmdGpu,
    AppleGpu,
    FailedDevice,
    IntelGpu,
    Machine,
    NvidiaGpu,
)
from dgprofile.records.passes import PassTimes
from dgprofile.records.predictions import Prediction, Predictions, Scenario
from dgprofile.records.results import ResultFile
from dgprofile.records.values import Unavailable
from dgprofile.text.scenario import baseline_text, nvlink_text, peers_text, setup_text
from dgprofile.text.units import (
    bandwidth_text,
    bytes_text,
    count_text,
    hertz_text,
    number_key,
    percent_text,
    plain_text,
    seconds_text,
    signed_percent_text,
    significant_text,
    speedup_band_text,
    speedup_text,
    speedup_words,
    tokens_per_s_text,
    watts_text,
    whole_percent_text,
    with_article,
)

DG_MODEL = "google/diffusiongemma-26B-A4B-it"
AR_MODEL = "google/gemma-4-26B-A4B-it"


def scenario_text(scenario: Scenario) -> str:
    """A scenario in one line, with its setup and the AR baseline it is compared with."""
    return (f"{scenario.workload}, {scenario.precision}, concurrency {scenario.concurrency}, engine "
            f"{scenario.engine}: {scenario.prompt_tokens} prompt -> {scenario.output_tokens} output tokens, "
            f"{count_text(scenario.steps_per_canvas)} denoising steps per canvas; setup: {setup_text(scenario)}; "
            f"against {baseline_text(scenario)}")


def render_result_html(result: ResultFile) -> str:
    """The self-contained HTML page of one result file: verdict, machine, limits, charts, basis, verification."""
    return render_page(result_page(result))


def result_page(result: ResultFile) -> PageView:
    """The view-model of the result page."""
    predictions = result.predictions
    headline = predictions.headline if isinstance(predictions, Predictions) else None
    several_gpus = multi_gpu_section(result.multi_gpu, result.machine, predictions)
    sections = (
        _verdict_section(predictions),
        measured_section(result.measured_runs),
        _machine_section(result.machine),
        limits_section(result.limits),
        *((several_gpus,) if several_gpus is not None else ()),
        roofline_section(result.limits, result.passes, predictions),
        speedup_section(predictions),
        passes_section(result.passes, predictions),
        memory_section(predictions),
        _basis_section(result),
        _verify_section(result.machine, predictions),
    )
    host = host_name(result.machine, result.run.label)
    hardware, memory_class = hardware_name(evidence(result)), memory_class_text(evidence(result))
    origin = result.run.origin
    badges = [Badge("measured on this machine" if origin == "measured" else "predicted: nothing measured",
                    "" if origin == "measured" else "warning"),
              Badge(memory_class)]
    if headline is not None:
        badges.insert(0, Badge(headline.verdict.label, headline.verdict.tone))
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
        tone=predictions.verdict.tone, label=predictions.verdict.label,
        summary=f"{speedup_words(h.speedup)}.",
        band=f"{predictions.verdict.meaning.capitalize()}. Speedup "
             f"{speedup_text(h.speedup)}, uncertainty band {speedup_band_text(h.speedup_low, h.speedup_high)}; predicted "
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
    ar_label = "Gemma 4 (AR + MTP)" if p.scenario.ar_baseline.kind == "mtp" else "Gemma 4 (AR)"
    return TableView("Both models in the headline scenario", ("", "DiffusionGemma", ar_label), tuple(rows),
                     note=f"First useful draft: {USEFUL_DRAFT_DEFINITION}.")


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
                  ("SMs", f"{plain_text(device.sm_count)} at up to {hertz_text(device.sm_clock_max_hz)}"),
                  ("driver / CUDA", f"{plain_text(device.driver_version)} / {plain_text(device.cuda_driver_version)}"),
                  ("power limit", watts_text(device.power_limit_w)),
                  ("PCIe", f"gen {plain_text(device.pcie_generation)} x{plain_text(device.pcie_width)}"),
                  ("NVLink", nvlink_text(device)), ("other GPUs", peers_text(device)),
                  ("MIG / ECC", f"{plain_text(device.mig_mode)} / {plain_text(device.ecc_mode)}"),
                  ("utilisation at probe time", whole_percent_text(device.utilization_percent))]
    elif isinstance(device, AmdGpu):
        items += [("VRAM / GTT", f"{bytes_text(device.memory_total_bytes)} / {bytes_text(device.gtt_total_bytes)}"),
                  ("datasheet bandwidth", bandwidth_text(device.datasheet_bandwidth_bytes_per_s)),
                  ("architecture", f"{plain_text(device.architecture)} ({plain_text(device.gfx_target)})"),
                  ("compute units", f"{plain_text(device.compute_units)} at up to "
                                    f"{hertz_text(device.gfx_clock_max_hz)}"),
                  ("driver / ROCm", f"{plain_text(device.driver_version)} / {plain_text(device.rocm_version)}"),
                  ("power limit", watts_text(device.power_limit_w)),
                  ("compute / memory partition",
                   f"{plain_text(device.compute_partition)} / {plain_text(device.memory_partition)}"),
                  ("utilisation at probe time", whole_percent_text(device.utilization_percent)),
                  ("verified on hardware", plain_text(device.verified_on_hardware))]
    elif isinstance(device, IntelGpu):
        items += [("local memory", bytes_text(device.memory_total_bytes)),
                  ("architecture", f"{plain_text(device.architecture)}, PCI {device.pci_device_id}"),
                  ("Xe cores", f"{plain_text(device.xe_cores)} at up to {hertz_text(device.gt_clock_max_hz)}"),
                  ("driver", device.driver), ("power limit", watts_text(device.power_limit_w)),
                  ("verified on hardware", plain_text(device.verified_on_hardware))]
    elif isinstance(device, AppleGpu):
        items += [("chip", f"{device.chip}, {plain_text(device.gpu_cores)} GPU cores"),
                  ("unified memory", bytes_text(device.unified_memory_bytes)),
                  ("recommended working set", bytes_text(device.recommended_working_set_bytes)),
                  ("macOS", plain_text(device.macos_version)),
                  ("verified on hardware", plain_text(device.verified_on_hardware))]
    items.append(("datasheet entry", plain_text(device.spec_id)))
    items += [("warning", w) for w in device.warnings]
    return FactsView(f"Device {device.index}: {device.name}", tuple(items))


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
        ("torch", f"{plain_text(sw.torch_version)}; CUDA {plain_text(sw.torch_cuda_version)}"),
        ("vLLM / transformers", f"{plain_text(sw.vllm_version)} / {plain_text(sw.transformers_version)}"),
    ))]
    blocks += [_accelerator_facts(device) for device in machine.accelerators]
    if not machine.accelerators:
        blocks.append(NoticeView("No accelerator found: predictions, if any, are for the CPU."))
    if machine.warnings:
        blocks.append(ListView("Warnings", machine.warnings, tone="warning"))
    return SectionView("machine", "Machine", intro, tuple(blocks))


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
            spec = datasheet_sources(device.spec_id)
            if spec:
                rows.append(RowView((Cell(f"{device.name}: datasheet entry"), Cell("datasheet"), Cell(spec))))
    blocks: list[Block] = [_key_figures(result)]
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


def _key_figures(result: ResultFile) -> FactsView:
    """The machine figures the fleet and compare pages show for this file, worked out the same way."""
    e = evidence(result)
    return FactsView("Key figures (as on the fleet and compare pages)", (
        ("hardware", hardware_name(e)),
        ("streaming read bandwidth", figure_text(stream_bandwidth(e), "B/s")),
        (f"ridge at the {half_precision(e)} matmul peak", figure_text(ridge(e), "FLOP/byte")),
        ("memory usable by the accelerator", figure_text(usable_accelerator_memory(e), "B")),
    ))


def _calibration_blocks(p: Predictions) -> list[Block]:
    c = p.calibration
    engines = tuple(RowView((
        Cell(e.engine), Cell(seconds_text(e.pass_floor_seconds)), Cell(seconds_text(e.diffusion_step_overhead_seconds)),
        Cell(percent_text(e.bandwidth_efficiency)), Cell(percent_text(e.compute_efficiency)),
        Cell(", ".join(e.fitted) or "none"), Cell(", ".join(e.runs) or "none"),
        Cell(significant_text(e.rms_log_residual)))) for e in c.engines)
    runs = tuple(RowView((
        Cell(r.run_id), Cell(r.hardware), Cell(r.engine), Cell(speedup_text(r.published_speedup)),
        Cell(speedup_text(r.predicted_speedup)),
        Cell(", ".join(f"{o.name} {signed_percent_text(o.relative_error)}" for o in r.observables)),
        Cell(f"{plain_text(r.published_verdict)} / {r.predicted_verdict}",
             tone="" if r.published_verdict in (r.predicted_verdict,) or isinstance(r.published_verdict, Unavailable)
             else "warning"))) for r in c.runs)
    blocks: list[Block] = [
        TableView(f"Engine parameters fitted to {c.data_file}", (
            "engine", "pass floor", "overhead per denoise step", "bandwidth efficiency", "compute efficiency",
            "fitted", "runs", "RMS log residual"), engines),
        TableView(f"Published runs reproduced, largest error {percent_text(c.max_abs_relative_error)}", (
            "run", "hardware", "engine", "published speedup", "predicted", "figures (error)",
            "verdict published / predicted"), runs)]
    validation = c.validation
    if isinstance(validation, Unavailable):
        blocks.append(unavailable_notice("Transfer validation", validation))
    else:
        checks = tuple(RowView((
            Cell(t.run_id), Cell(t.hardware_class), Cell(t.held_out), Cell(t.figure),
            Cell(significant_text(t.published), number_key(t.published)),
            Cell(significant_text(t.predicted), number_key(t.predicted)),
            Cell(signed_percent_text(t.relative_error), number_key(t.relative_error)),
            Cell(f"{significant_text(t.low)} to {significant_text(t.high)}"),
            Cell("yes" if t.in_band else "no", tone="" if t.in_band else "warning")))
            for t in validation.checks)
        blocks.append(TableView(
            f"Transfer: each published figure predicted by a fit that did not see it (median leave-one-out error "
            f"{percent_text(validation.median_speedup_error_leave_one_out)} for speedups, "
            f"{percent_text(validation.median_figure_error_leave_one_out)} for other figures; inside the 80% band "
            f"{percent_text(validation.speedup_coverage_leave_one_out)} and "
            f"{percent_text(validation.figure_coverage_leave_one_out)})",
            ("run", "hardware class", "held out", "figure", "published", "predicted", "error", "band", "inside"),
            checks, sortable=True, filterable=True, table_id="transfer-table",
            collapsed_summary=f"All {count_text(len(checks))} transfer checks"))
    return blocks


def verify_commands(scenario: Scenario) -> str:
    """The shell commands that measure the scenario on real weights with vLLM, for both models, same settings."""
    steps = max(1, round(scenario.steps_per_canvas))
    max_len = scenario.prompt_tokens + scenario.output_tokens + 256
    quant = " --quantization fp8" if scenario.precision == "fp8" else ""
    seqs = max(4, scenario.concurrency)
    setup = (" --enforce-eager" if scenario.execution_mode == "eager" else "") + (
        f" --tensor-parallel-size {scenario.gpus}" if scenario.gpus > 1 else "")
    common = (f"--max-num-seqs {seqs} --max-model-len {max_len}{quant} --no-enable-prefix-caching "
              f"--gpu-memory-utilization 0.85{setup}")
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
    intro = ("Check the prediction on real weights: `dgprofile verify` runs both models (transformers in process, or "
             "any OpenAI-compatible server) and adds its figures above; or serve each model with vLLM and benchmark "
             "it with the same settings.")
    headline = predictions.headline if isinstance(predictions, Predictions) else None
    if isinstance(machine, Machine):
        vendor = ("nvidia" if any(isinstance(a, NvidiaGpu) for a in machine.accelerators) else
                  "amd" if any(isinstance(a, AmdGpu) for a in machine.accelerators) else "other")
    else:
        vendor = predictions.ceilings.vendor if isinstance(predictions, Predictions) else "unknown"
    if headline is None:
        return SectionView("verify", "Verify on real weights", intro, (NoticeView(
            "Verification commands unavailable: there is no predicted scenario to verify."),))
    s = headline.scenario
    notes = [f"Compare the two runs' mean end-to-end latency and output token throughput with the predicted total "
             f"latency and tokens/s above; DiffusionGemma's run also prints a 'Diffusion Decoding' block with the "
             f"denoising steps per canvas (predicted: {count_text(s.steps_per_canvas)}).",
             "max_denoising_steps only caps the steps: adaptive stopping may stop a canvas earlier. For exactly "
             f"{round(s.steps_per_canvas)} steps, point --generation-config at a copy of the checkpoint's "
             "generation_config.json with confidence_threshold 0.",
             "TTFT of DiffusionGemma includes the whole first canvas (tokens appear only at its commit)."]
    if s.ar_baseline.kind == "mtp":
        notes.append(f"The prediction compares with {baseline_text(s)}: serve Gemma 4 with its MTP drafter "
                     "(vLLM's --speculative-config) as your setup does, and compare its acceptance with the "
                     "prediction's.")
    if s.precision not in ("bf16", "fp8"):
        notes.insert(0, f"The scenario's precision is {s.precision}: serve {with_article(s.precision)} checkpoint of each model "
                        "instead of the original weights (the commands above run bf16).")
    if vendor not in ("nvidia", "amd"):
        notes.insert(0, f"This machine has no NVIDIA or AMD GPU, and the prediction is for the {s.engine} engine: "
                        "the vLLM commands verify the same scenario on a CUDA or ROCm machine.")
    return SectionView("verify", "Verify on real weights", intro, (
        CodeView(f"vLLM, {scenario_text(s)}", verify_commands(s)), ListView("Reading the results", tuple(notes))))
