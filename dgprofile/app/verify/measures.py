"""From timed generations to the figures of a measured run: per request, then median and spread per workload
beside the prediction for the same scenario.

Normalised edit distance is rapidfuzz's Levenshtein distance over the longer text's length (0: equal, 1: nothing
in common; two empty texts are equal). Time to first useful draft is the first snapshot (a DiffusionGemma draft
or committed canvas, a Gemma 4 prefix) within ``USEFUL_DRAFT_MAX_DISTANCE`` of the final output.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from dgprofile.model.verdict import SpeedupBand, classify
from dgprofile.probes.verify.trace import GenerationTrace, Snapshot
from dgprofile.records.predictions import ModeEstimate, PassEstimate, Prediction, Verdict
from dgprofile.records.values import Unavailable
from dgprofile.records.verification import (
    MAX_DRAFT_POINTS,
    USEFUL_DRAFT_MAX_DISTANCE,
    DraftPoint,
    MeasuredFigure,
    ModelRole,
    ModeStatistics,
    RequestRecord,
)

NO_REQUEST_FINISHED = Unavailable("no request finished")


def edit_distance(a: str, b: str) -> float:
    """Normalised Levenshtein distance between two texts."""
    from rapidfuzz.distance import Levenshtein

    return float(Levenshtein.normalized_distance(a, b))


@dataclass(frozen=True)
class RequestOutcome:
    """A request's record and the final text it produced (kept only to compare the two models)."""

    record: RequestRecord
    text: str | Unavailable


def _thin(points: list[DraftPoint]) -> tuple[DraftPoint, ...]:
    """At most MAX_DRAFT_POINTS points, evenly spaced, keeping the first and the last."""
    if len(points) <= MAX_DRAFT_POINTS:
        return tuple(points)
    step = (len(points) - 1) / (MAX_DRAFT_POINTS - 1)
    return tuple(points[round(i * step)] for i in range(MAX_DRAFT_POINTS))


def _convergence(snapshots: Sequence[Snapshot], final: str | Unavailable
                 ) -> tuple[tuple[DraftPoint, ...], float | Unavailable]:
    if isinstance(final, Unavailable):
        return (), final
    points: list[DraftPoint] = []
    first_useful: float | Unavailable = Unavailable("no draft came within the useful distance of the final output")
    for snapshot in snapshots:
        if isinstance(snapshot.text, Unavailable):
            return (), snapshot.text
        distance = edit_distance(snapshot.text, final)
        points.append(DraftPoint(snapshot.seconds, distance))
        if isinstance(first_useful, Unavailable) and distance <= USEFUL_DRAFT_MAX_DISTANCE:
            first_useful = snapshot.seconds
    return _thin(points), first_useful


def request_outcome(trace: GenerationTrace, *, workload: str, prompt_id: str, role: ModelRole,
                    concurrency: int) -> RequestOutcome:
    """One request's figures from its trace."""
    first_output = next((s.seconds for s in trace.snapshots if s.kind != "draft"),
                        Unavailable("nothing was committed or streamed"))
    drafts, first_useful = _convergence(trace.snapshots, trace.output_text)
    total, output = trace.total_seconds, trace.output_tokens
    rate: float | Unavailable = (output / total if isinstance(total, float) and isinstance(output, int) and total > 0
                                 else Unavailable("no finished output"))
    passes, canvases = trace.denoise_passes, trace.canvases
    steps: float | Unavailable = (passes / canvases if isinstance(passes, int) and isinstance(canvases, int)
                                  and canvases else passes if isinstance(passes, Unavailable)
                                  else Unavailable("no canvas was committed"))
    pass_seconds: float | Unavailable = (statistics.median(trace.pass_seconds) if trace.pass_seconds
                                         else Unavailable("fewer than two drafts or tokens in one stretch"))
    record = RequestRecord(
        workload=workload, prompt_id=prompt_id, role=role, concurrency=concurrency, faults=trace.faults,
        prompt_tokens=trace.prompt_tokens, output_tokens=output, ttft_seconds=first_output,
        first_useful_draft_seconds=first_useful, total_latency_seconds=total, tokens_per_s=rate,
        pass_seconds=pass_seconds, steps_per_canvas=steps, tokens_per_forward=trace.tokens_per_forward,
        peak_memory_bytes=trace.peak_memory_bytes, drafts=drafts)
    return RequestOutcome(record, trace.output_text)


# --- statistics -------------------------------------------------------------------------------------------------


def figure(values: Sequence[float | int | Unavailable], predicted: float | Unavailable) -> MeasuredFigure | Unavailable:
    """Median, quartiles and range of the available values, beside the prediction and its residual."""
    numbers = sorted(float(v) for v in values if not isinstance(v, Unavailable))
    if not numbers:
        reasons = sorted({v.reason for v in values if isinstance(v, Unavailable)})
        return Unavailable("; ".join(reasons) if reasons else NO_REQUEST_FINISHED.reason)
    median = statistics.median(numbers)
    low, high = ((numbers[0], numbers[0]) if len(numbers) == 1
                 else tuple(statistics.quantiles(numbers, n=4, method="inclusive")[::2]))
    residual: float | Unavailable = (median / predicted - 1 if isinstance(predicted, float) and predicted > 0
                                     else predicted if isinstance(predicted, Unavailable)
                                     else Unavailable("the prediction is zero"))
    return MeasuredFigure(median=median, p25=low, p75=high, minimum=numbers[0], maximum=numbers[-1],
                          samples=len(numbers), predicted=predicted, residual=residual)


def _predicted_pass(mode: ModeEstimate, role: ModelRole) -> float | Unavailable:
    kind = "dg-denoise" if role == "diffusion" else "ar-step"
    found: PassEstimate | None = next((p for p in mode.passes if p.pass_kind == kind), None)
    return found.seconds if found is not None else Unavailable(f"the prediction has no {kind} pass")


def mode_statistics(records: Sequence[RequestRecord], role: ModelRole, prediction: Prediction | Unavailable,
                    *, predicted_steps: float | Unavailable) -> ModeStatistics:
    """One model's figures over a workload's requests, each beside its prediction."""
    finished = [r for r in records if not r.faults]
    mode = (prediction if isinstance(prediction, Unavailable)
            else prediction.diffusion if role == "diffusion" else prediction.autoregressive)

    def predicted(value: float | Unavailable) -> float | Unavailable:
        return mode if isinstance(mode, Unavailable) else value

    ttft: float | Unavailable
    draft: float | Unavailable
    total: float | Unavailable
    rate: float | Unavailable
    pass_time: float | Unavailable
    memory: float | Unavailable
    if isinstance(mode, ModeEstimate) and isinstance(prediction, Prediction):
        ttft, draft, total = mode.ttft_s, mode.first_draft_s, mode.total_latency_s
        rate = (prediction.scenario.output_tokens / mode.total_latency_s if mode.total_latency_s > 0
                else Unavailable("no predicted latency"))
        pass_time, memory = _predicted_pass(mode, role), float(mode.memory_bytes)
    else:
        missing = mode if isinstance(mode, Unavailable) else Unavailable("not predicted")
        ttft = draft = total = rate = pass_time = memory = missing
    not_predicted = Unavailable("set by the request, not predicted")
    autoregressive = Unavailable("autoregressive: one token per forward, no canvases")
    return ModeStatistics(
        role=role, requests=len(records), failed=len(records) - len(finished),
        output_tokens=figure([r.output_tokens for r in finished], not_predicted),
        ttft_seconds=figure([r.ttft_seconds for r in finished], predicted(ttft)),
        first_useful_draft_seconds=figure([r.first_useful_draft_seconds for r in finished], predicted(draft)),
        total_latency_seconds=figure([r.total_latency_seconds for r in finished], predicted(total)),
        tokens_per_s=figure([r.tokens_per_s for r in finished], predicted(rate)),
        pass_seconds=figure([r.pass_seconds for r in finished], predicted(pass_time)),
        steps_per_canvas=(figure([r.steps_per_canvas for r in finished], predicted_steps) if role == "diffusion"
                          else autoregressive),
        tokens_per_forward=figure([r.tokens_per_forward for r in finished], not_predicted),
        peak_memory_bytes=figure([r.peak_memory_bytes for r in finished], predicted(memory)))


def measured_verdict(speedup: MeasuredFigure | Unavailable) -> Verdict | Unavailable:
    """The class of the measured speedup, its band the quartiles over prompts."""
    if isinstance(speedup, Unavailable):
        return speedup
    return classify(SpeedupBand(speedup.median, speedup.p25, speedup.p75))
