"""A scenario's setup in words, for the terminal and the pages alike."""

from __future__ import annotations

from dgprofile.records.predictions import Interconnect, Scenario


def baseline_text(scenario: Scenario) -> str:
    """The AR baseline in words: plain Gemma 4, or with its MTP drafter and its figures."""
    baseline = scenario.ar_baseline
    if baseline.kind == "plain":
        return "plain Gemma 4"
    acceptance = baseline.acceptance
    accepted = f", {acceptance:.0%} accepted" if isinstance(acceptance, float) else ""
    return f"Gemma 4 with its MTP drafter ({baseline.draft_tokens} drafts a step{accepted})"


def setup_text(scenario: Scenario) -> str:
    """The scenario's setup knobs on one line."""
    link = scenario.interconnect
    parts = [scenario.execution_mode,
             f"{scenario.gpus} GPUs over {link.description}" if isinstance(link, Interconnect) else "one GPU",
             f"{scenario.sampler.kind} sampler {scenario.sampler.value:g}",
             f"thinking {'on' if scenario.thinking else 'off'}",
             f"{'quantised' if scenario.quantised_logits else 'full-precision'} logits",
             f"{scenario.precision}: {scenario.weight_format}"]
    return ", ".join(parts)
