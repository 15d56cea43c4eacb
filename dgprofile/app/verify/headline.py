"""A measured speedup outranks a predicted one: the headline verdict of a scenario that was measured rests on
the measurement, and the first reason says so."""

from __future__ import annotations

import dataclasses

from dgprofile.records.predictions import Basis, Predictions
from dgprofile.records.values import Unavailable
from dgprofile.records.verification import MeasuredFigure, MeasuredRun, WorkloadStatistics
from dgprofile.text.units import speedup_band_text, speedup_text

MEASURED_PREFIX = "measured: "
MEASURED_BASIS = "headline verdict"


def measured_headline(predictions: Predictions, runs: tuple[MeasuredRun, ...]
                      ) -> tuple[MeasuredRun, WorkloadStatistics, MeasuredFigure] | None:
    """The latest measured run of the headline's scenario (same model, engine, precision, workload and
    concurrency) with a measured speedup, if any."""
    scenario = predictions.headline.scenario
    for run in reversed(runs):
        if (run.predicted_model != predictions.model_id or run.engine != scenario.engine
                or run.settings.dtype != scenario.precision):
            continue
        for stats in run.workloads:
            if (stats.workload == scenario.workload and stats.concurrency == scenario.concurrency
                    and isinstance(stats.speedup, MeasuredFigure) and not isinstance(stats.measured_verdict,
                                                                                      Unavailable)):
                return run, stats, stats.speedup
    return None


def headline_from_measured(predictions: Predictions, runs: tuple[MeasuredRun, ...]) -> Predictions:
    """``predictions`` with the headline verdict taken from the measured run of its scenario, when there is one
    (the predicted verdict stays on ``predictions.headline``)."""
    found = measured_headline(predictions, runs)
    if found is None:
        return predictions
    reasons = tuple(r for r in predictions.reasons if not r.startswith(MEASURED_PREFIX))
    basis = tuple(b for b in predictions.basis if b.quantity != MEASURED_BASIS)
    run, stats, speedup = found
    assert not isinstance(stats.measured_verdict, Unavailable)  # measured_headline checked it
    headline = predictions.headline
    reason = (f"{MEASURED_PREFIX}the verdict rests on the measured speedup, {speedup_text(speedup.median)} "
              f"(quartiles {speedup_band_text(speedup.p25, speedup.p75)} over {stats.prompts} prompts, "
              f"{run.backend} {run.engine}), not on the predicted {speedup_text(headline.speedup)} "
              f"({headline.verdict})")
    source = f"dgprofile verify, {run.started_at}: {', '.join(m.model_id for m in run.models)}"
    return dataclasses.replace(predictions, verdict=stats.measured_verdict, reasons=(reason, *reasons),
                               basis=(Basis(MEASURED_BASIS, "measured", source), *basis))
