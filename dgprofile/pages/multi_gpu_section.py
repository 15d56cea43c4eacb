"""The result page's multi-GPU section (`check --gpus N|all`): the path between each pair of GPUs, every GPU's
limits measured at once and their spread, the all-reduce sweep and the link the model takes from it, what the link
costs per pass, and the decoder layers split over the GPUs against the model's prediction."""

from __future__ import annotations

import statistics

from dgprofile.errors import UsageError
from dgprofile.model.setup import detected_interconnect, fit_all_reduce, measured_interconnect
from dgprofile.model.tensor_parallel import split_pass_checks
from dgprofile.pages.views import Block, Cell, FactsView, NoticeView, RowView, SectionView, TableView
from dgprofile.records.machine import LINK_PATH_WORDS, Machine, NvidiaGpu
from dgprofile.records.multi_gpu import ONE_GPU_MEASURED, AllReduceSweep, LaunchMode, MultiGpuRun
from dgprofile.records.predictions import ExecutionMode, Interconnect, Predictions
from dgprofile.records.values import Unavailable
from dgprofile.specs.model_config import load_model_config
from dgprofile.text.scenario import link_text
from dgprofile.text.units import (
    bandwidth_text,
    bytes_text,
    flops_text,
    number_key,
    percent_text,
    seconds_text,
    signed_percent_text,
    unavailable_text,
)

INTRO = ("Every GPU measured at once and the links between them (`check --gpus N|all`): the path NVML reports "
         "between each pair, each GPU's limits and how far apart they are, all-reduces at the message sizes tensor "
         "parallelism sends, and decoder layers split over the GPUs against the model's prediction.")


def multi_gpu_section(run: MultiGpuRun | Unavailable, machine: Machine | Unavailable,
                      predictions: Predictions | Unavailable) -> SectionView | None:
    """The section, or None for a run that measured one GPU (nothing to show)."""
    if run == ONE_GPU_MEASURED:
        return None
    if isinstance(run, Unavailable):
        return SectionView("multi-gpu", "Several GPUs", INTRO, (NoticeView(f"Not measured: {run.reason}"),))
    blocks: list[Block] = []
    if isinstance(machine, Machine):
        blocks.append(topology_table(machine, run.gpu_indices))
    blocks.append(limits_table(run))
    blocks += all_reduce_blocks(run, machine)
    blocks += link_cost_blocks(predictions)
    blocks.append(split_table(run, machine))
    return SectionView("multi-gpu", "Several GPUs", INTRO, tuple(blocks))


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return unavailable_text(value) if isinstance(value, Unavailable) else str(value)


def topology_table(machine: Machine, indices: tuple[int, ...]) -> TableView:
    rows = []
    for gpu in machine.accelerators:
        if not isinstance(gpu, NvidiaGpu) or gpu.index not in indices:
            continue
        if isinstance(gpu.peer_links, Unavailable):
            rows.append(RowView((Cell(f"GPU {gpu.index}"), Cell(unavailable_text(gpu.peer_links)), Cell(""),
                                 Cell(""), Cell(""))))
            continue
        for link in gpu.peer_links:
            if link.peer_index <= gpu.index or link.peer_index not in indices:
                continue
            path = link.path if isinstance(link.path, Unavailable) else LINK_PATH_WORDS[link.path]
            rows.append(RowView((
                Cell(f"GPU {gpu.index} - GPU {link.peer_index}"), Cell(_value(path)),
                Cell(_value(link.nvlink_links)),
                Cell(_value(link.topology), detail=f"level {_value(link.common_ancestor_level)}"),
                Cell(f"reads {_value(link.peer_to_peer)}, over NVLink {_value(link.nvlink)}"))))
    return TableView("Path between each pair of GPUs (NVML)", ("GPUs", "path", "NVLink links", "closest common "
                     "ancestor", "peer-to-peer"), tuple(rows),
                     note="NVLink links through NVSwitches count every link of the less-linked GPU.")


def limits_table(run: MultiGpuRun) -> TableView:
    if isinstance(run.per_gpu_limits, Unavailable):
        return TableView("Limits of every GPU, measured at once", ("GPU",),
                         (RowView((Cell(unavailable_text(run.per_gpu_limits)),)),))
    rows, reads, rates = [], [], []
    for gpu in run.per_gpu_limits:
        limits = gpu.limits
        if isinstance(limits, Unavailable):
            rows.append(RowView((Cell(f"GPU {gpu.gpu_index}"), Cell(unavailable_text(limits)), Cell(""), Cell(""))))
            continue
        read = limits.stream_read_bytes_per_s
        bf16 = limits.peak_flops_per_s.get("bf16", Unavailable("bf16 not measured"))
        reads += [read] if isinstance(read, float) else []
        rates += [bf16] if isinstance(bf16, float) else []
        rows.append(RowView((Cell(f"GPU {gpu.gpu_index}", detail=gpu.device),
                             Cell(bandwidth_text(read), number_key(read)),
                             Cell(flops_text(bf16), number_key(bf16)),
                             Cell(seconds_text(limits.launch_floor_seconds)))))
    spread = [f"{name} {percent_text((max(v) - min(v)) / statistics.median(v))}"
              for name, v in (("streaming read", reads), ("bf16 matmul", rates)) if len(v) > 1]
    return TableView("Limits of every GPU, measured at once", ("GPU", "streaming read", "bf16 matmul",
                     "launch floor"), tuple(rows),
                     note=("Spread (largest less smallest, over the median): " + ", ".join(spread) + ".") if spread
                     else "")


SWEEP_WORDS: dict[LaunchMode, tuple[str, ExecutionMode]] = {
    "eager": ("launched one at a time", "eager"),
    "cuda-graph": ("replayed from CUDA graphs", "cuda-graphs"),
}


def all_reduce_blocks(run: MultiGpuRun, machine: Machine | Unavailable) -> list[Block]:
    """Each all-reduce sweep (eager, and replayed from CUDA graphs) and the link the model takes from it."""
    blocks: list[Block] = []
    sweeps: tuple[tuple[LaunchMode, AllReduceSweep | Unavailable], ...] = (
        ("eager", run.all_reduce), ("cuda-graph", run.all_reduce_in_graphs))
    for launch_mode, sweep in sweeps:
        words, mode = SWEEP_WORDS[launch_mode]
        if isinstance(sweep, Unavailable):
            blocks.append(NoticeView(f"All-reduces {words}: {sweep.reason}"))
        else:
            blocks += _sweep_blocks(sweep, words, mode, machine)
    return blocks


def _sweep_blocks(sweep: AllReduceSweep, words: str, mode: ExecutionMode, machine: Machine | Unavailable
                  ) -> list[Block]:
    rows = [RowView((Cell("AR step" if p.message_kind == "ar-step" else "canvas"), Cell(str(p.concurrency)),
                     Cell(str(p.tokens), str(p.tokens)), Cell(bytes_text(p.message_bytes)),
                     Cell(seconds_text(p.timing.median_seconds), number_key(p.timing.median_seconds),
                          detail=f"IQR {seconds_text(p.timing.iqr_seconds)}"),
                     Cell(bandwidth_text(p.bus_bytes_per_s), number_key(p.bus_bytes_per_s))))
            for p in sweep.points]
    table = TableView(f"All-reduces over {sweep.world_size} GPUs ({sweep.backend.upper()}), {words}",
                      ("message", "concurrency", "tokens", "bytes", "time", "bus bandwidth"), tuple(rows),
                      sortable=True,
                      note=(f"{sweep.dtype} [tokens x {sweep.hidden_size}], the hidden states tensor parallelism "
                            "sums; bus bandwidth is the message over the time times 2 (n - 1) / n, what each GPU "
                            "sends and receives."))
    fit = fit_all_reduce(sweep)
    if isinstance(fit, Unavailable):
        return [table, NoticeView(f"No link fitted: {fit.reason}")]
    path = detected_interconnect(machine, sweep.world_size) if isinstance(machine, Machine) else machine
    link = measured_interconnect(sweep, path, mode)
    facts = FactsView(f"The link the model takes from them (for engines whose all-reduces are {words})", (
        ("measured latency", seconds_text(fit.latency_seconds)),
        ("bus bandwidth", bandwidth_text(link.bytes_per_s) if isinstance(link, Interconnect)
         else unavailable_text(link)),
        ("fit", link.basis if isinstance(link, Interconnect) else fit.basis),
        ("NVML or datasheet link", path.description + f" ({bandwidth_text(path.bytes_per_s)})"
         if isinstance(path, Interconnect) else unavailable_text(path))))
    return [table, facts]


def link_cost_blocks(predictions: Predictions | Unavailable) -> list[Block]:
    """What the link adds to each pass of the headline scenario."""
    if isinstance(predictions, Unavailable):
        return []
    headline = predictions.headline
    link = headline.scenario.interconnect
    if not isinstance(link, Interconnect):
        return []
    rows = []
    for model, mode in (("DiffusionGemma", headline.diffusion), ("Gemma 4", headline.autoregressive)):
        if isinstance(mode, Unavailable):
            continue
        for estimate in mode.passes:
            cost = estimate.engine_added_seconds.get("interconnect", 0.0)
            rows.append(RowView((Cell(f"{model} {estimate.pass_kind}"), Cell(seconds_text(estimate.seconds)),
                                 Cell(seconds_text(cost), number_key(cost)),
                                 Cell(percent_text(cost / estimate.seconds) if estimate.seconds > 0 else "-"))))
    return [TableView(f"What the link costs per pass ({headline.scenario.engine}, {headline.scenario.gpus} GPUs)",
                      ("pass", "pass time", "all-reduces", "share"), tuple(rows),
                      note=f"{link.description}: {link_text(link)}. {link.basis}.")]


def split_table(run: MultiGpuRun, machine: Machine | Unavailable) -> Block:
    world = run.all_reduce.world_size if not isinstance(run.all_reduce, Unavailable) else 0
    path = detected_interconnect(machine, world) if isinstance(machine, Machine) and world else Unavailable(
        "no topology")
    try:
        config = load_model_config(run.model_id)
    except UsageError as exc:  # measured on an architecture this dgprofile has no file for
        return NoticeView(f"Split layers not set against the model: {exc}")
    checks = split_pass_checks(run, config, path)
    if isinstance(checks, Unavailable):
        return NoticeView(f"Split layers not measured: {checks.reason}")
    rows = [RowView((Cell(f"{c.tensor_parallel} GPUs"), Cell(c.pass_kind), Cell(str(c.concurrency)),
                     Cell(SWEEP_WORDS[c.launch_mode][0]),
                     Cell(seconds_text(c.single_gpu_seconds), number_key(c.single_gpu_seconds),
                          detail=f"roofline {seconds_text(c.roofline_seconds)}"),
                     Cell(seconds_text(c.measured_seconds), number_key(c.measured_seconds)),
                     Cell(seconds_text(c.predicted_seconds), number_key(c.predicted_seconds),
                          detail=f"all-reduces {seconds_text(c.interconnect_seconds)}"),
                     Cell(signed_percent_text(c.difference), number_key(c.difference),
                          tone="better" if abs(c.difference) <= 0.15 else "worse")))
            for c in checks]
    return TableView("A pass's decoder layers split over the GPUs: measured against predicted",
                     ("split", "pass", "concurrency", "launched", "one GPU", "measured", "predicted", "difference"),
                     tuple(rows),
                     note=("One sliding and one global layer timed split (heads, dense MLP and experts shared out, "
                           "two all-reduces a layer) and whole on one GPU, scaled to the model's layers; the head is "
                           "left out. Predicted: the whole layers' time with their roofline work (bytes and FLOPs at "
                           "the GPU's measured rates) shared out over the GPUs and the rest, kernels' latency, kept "
                           "whole, plus the all-reduces over the link measured above, launched as the layers were."))
