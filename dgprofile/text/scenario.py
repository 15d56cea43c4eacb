"""A scenario's setup and a GPU's links in words, for the terminal and the pages alike."""

from __future__ import annotations

from dgprofile.records.machine import NvidiaGpu
from dgprofile.records.predictions import Interconnect, InterconnectSource, Scenario
from dgprofile.records.values import Unavailable
from dgprofile.text.units import seconds_text


def baseline_text(scenario: Scenario) -> str:
    """The AR baseline in words: plain Gemma 4, or with its MTP drafter and its figures."""
    baseline = scenario.ar_baseline
    if baseline.kind == "plain":
        return "plain Gemma 4"
    acceptance = baseline.acceptance
    accepted = f", {acceptance:.0%} accepted" if isinstance(acceptance, float) else ""
    return f"Gemma 4 with its MTP drafter ({baseline.draft_tokens} drafts a step{accepted})"


LINK_SOURCE_WORDS: dict[InterconnectSource, str] = {
    "measured-all-reduce": "all-reduces measured here", "nvml-topology": "NVML topology, latency assumed",
    "datasheet": "datasheet, latency assumed", "command-line": "--interconnect, latency assumed"}


def link_text(link: Interconnect) -> str:
    """Where a link's figures come from and the latency per all-reduce the engine pays; where all-reduces were
    measured and the engine pays its own prior, the measured eager figure beside it."""
    latency = f"{seconds_text(link.all_reduce_latency_seconds)} per all-reduce"
    measured = link.measured_latency_seconds
    if isinstance(measured, float) and measured != link.all_reduce_latency_seconds:
        latency += f" (engine prior; measured eager NCCL {seconds_text(measured)})"
    return f"{LINK_SOURCE_WORDS[link.source]}: {latency}"


def setup_text(scenario: Scenario) -> str:
    """The scenario's setup knobs on one line."""
    link = scenario.interconnect
    parts = [scenario.execution_mode,
             f"{scenario.gpus} GPUs over {link.description} ({link_text(link)})" if isinstance(link, Interconnect)
             else "no tensor parallelism",
             f"{scenario.sampler.kind} sampler {scenario.sampler.value:g}",
             f"thinking {'on' if scenario.thinking else 'off'}",
             f"{'quantised' if scenario.quantised_logits else 'full-precision'} logits",
             f"{scenario.precision}: {scenario.weight_format}"]
    return ", ".join(parts)


def nvlink_text(gpu: NvidiaGpu) -> str:
    """A GPU's active NVLink links in words, or why there are none."""
    link = gpu.nvlink
    if isinstance(link, Unavailable):
        return f"unavailable ({link.reason})"
    if link.active_links == 0:
        return "no active link"
    version = f"NVLink {link.version}" if isinstance(link.version, int) else f"version unknown ({link.version.reason})"
    rate = (f", {link.bytes_per_s / 1e9:.0f} GB/s per direction" if isinstance(link.bytes_per_s, float) else "")
    return f"{link.active_links} links, {version}{rate}"


def peers_text(gpu: NvidiaGpu) -> str:
    """How a GPU reaches the others (NVML topology), in words."""
    if isinstance(gpu.peer_links, Unavailable):
        return f"unavailable ({gpu.peer_links.reason})"
    parts = []
    for peer in gpu.peer_links:
        topology = peer.topology if isinstance(peer.topology, str) else f"topology unknown: {peer.topology.reason}"
        p2p = ("peer-to-peer" if peer.peer_to_peer is True else "no peer-to-peer" if peer.peer_to_peer is False
               else f"peer-to-peer unknown ({peer.peer_to_peer.reason})")
        parts.append(f"GPU {peer.peer_index}: {topology}, {'NVLink' if peer.nvlink else 'no NVLink'}, {p2p}")
    return "; ".join(parts) or "none"
