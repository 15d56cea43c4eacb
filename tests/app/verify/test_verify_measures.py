"""The figures of a measured run: edit distance, first useful draft, statistics beside the prediction, the
headline verdict resting on a measurement, the shipped prompts, the size plan and the scaled timeline."""

from __future__ import annotations

import json

import pytest
import result_factory as factory

from dgprofile.app.verify.headline import MEASURED_PREFIX, headline_from_measured
from dgprofile.app.verify.measures import edit_distance, figure, request_outcome
from dgprofile.app.verify.prompts import load_prompts, parse_prompts, select_prompts
from dgprofile.errors import UsageError
from dgprofile.interrupts import Interruption
from dgprofile.model.workloads import WORKLOADS
from dgprofile.probes.verify.plan import CPU_VOCAB_DIVISOR, plan_size
from dgprofile.probes.verify.timeline import scaled_times
from dgprofile.probes.verify.trace import GenerationTrace, Snapshot
from dgprofile.records import results
from dgprofile.records.predictions import Verdict
from dgprofile.records.values import Unavailable
from dgprofile.records.verification import USEFUL_DRAFT_MAX_DISTANCE
from dgprofile.specs.model_config import load_model_config
from dgprofile.terminal.format_verification import format_measured_run
from dgprofile.text.units import speedup_text

GIB = 2**30


def test_normalised_edit_distance_is_levenshtein_over_the_longer_text():
    assert edit_distance("kitten", "sitting") == pytest.approx(3 / 7)
    assert edit_distance("", "") == 0 and edit_distance("abc", "") == 1


def trace(snapshots, final="the final answer", total=2.0) -> GenerationTrace:
    return GenerationTrace(prompt_tokens=10, output_tokens=3, output_text=final, total_seconds=total,
                           snapshots=tuple(snapshots), pass_seconds=(0.1, 0.3, 0.2), denoise_passes=4, canvases=1,
                           tokens_per_forward=0.75, peak_memory_bytes=Unavailable("cpu"))


def test_first_useful_draft_is_the_first_snapshot_within_a_tenth_of_the_final_output():
    snapshots = [Snapshot(0.5, "draft", 3, "xxxxxxxxxxxxxxxx"), Snapshot(1.0, "draft", 3, "the final answex"),
                 Snapshot(1.5, "draft", 3, "the final answer"), Snapshot(1.6, "commit", 3, "the final answer")]
    record = request_outcome(trace(snapshots), workload="short-completion", prompt_id="p", role="diffusion",
                             concurrency=1).record
    assert edit_distance("the final answex", "the final answer") <= USEFUL_DRAFT_MAX_DISTANCE
    assert record.first_useful_draft_seconds == 1.0
    assert record.ttft_seconds == 1.6  # the first committed canvas, not a draft
    assert record.pass_seconds == 0.2 and record.steps_per_canvas == 4.0 and record.tokens_per_s == 1.5
    assert [p.seconds for p in record.drafts] == [0.5, 1.0, 1.5, 1.6] and record.drafts[-1].edit_distance_to_final == 0


def test_without_text_the_quality_measures_say_why():
    no_text = Unavailable("random weights: no tokenizer, so no text")
    record = request_outcome(trace([Snapshot(0.5, "token", 1, no_text)], final=no_text), workload="code-infill",
                             prompt_id="p", role="autoregressive", concurrency=1).record
    assert record.first_useful_draft_seconds == no_text and record.drafts == ()


def test_figure_has_median_quartiles_and_residual_against_the_prediction():
    result = figure([1.0, 2.0, 3.0, 4.0, Unavailable("failed")], 2.0)
    assert (result.median, result.p25, result.p75, result.minimum, result.maximum) == (2.5, 1.75, 3.25, 1.0, 4.0)
    assert result.samples == 4 and result.residual == pytest.approx(0.25)
    assert figure([Unavailable("the request failed: timeout")], 1.0) == Unavailable("the request failed: timeout")


def test_the_headline_verdict_rests_on_the_measured_speedup_of_its_scenario_and_says_so():
    predictions = factory.predictions(speedup=5.1, precisions=("bf16", "fp8"), engine="vllm")
    slow = factory.measured_run(prediction_=predictions.headline, dg_factor=3.0, ar_factor=1.0)
    updated = headline_from_measured(predictions, (slow,))
    assert predictions.verdict == Verdict.APPLIES and updated.verdict == Verdict.PARTIAL
    measured = speedup_text(slow.workloads[0].speedup.median)
    assert updated.reasons[0].startswith(MEASURED_PREFIX) and f"measured speedup, {measured}" in updated.reasons[0]
    assert updated.headline == predictions.headline  # the predicted verdict stays with the prediction
    assert updated.basis[0].kind == "measured"
    # Applying it again (a second verify run) keeps one measured reason.
    again = headline_from_measured(updated, (slow,))
    assert sum(r.startswith(MEASURED_PREFIX) for r in again.reasons) == 1


def test_a_measured_run_of_another_engine_leaves_the_headline_predicted():
    predictions = factory.predictions(precisions=("bf16", "fp8"), engine="vllm")
    other = factory.measured_run(prediction_=factory.prediction(workload="long-form-drafting", precision="bf16",
                                                                engine="transformers"), engine="transformers",
                                 dg_factor=3.0)
    assert headline_from_measured(predictions, (other,)) == predictions


def test_version_2_files_load_with_no_measured_runs():
    document = json.loads(results.dumps(factory.measured_h100_result()))
    document["schema_version"] = 2
    del document["measured_runs"]
    assert results.loads(json.dumps(document), source="v2.json").measured_runs == ()


def test_a_result_with_a_measured_run_round_trips_through_the_schema():
    result = factory.measured_h100_result(measured_runs=(factory.measured_run(),))
    assert results.loads(results.dumps(result)) == result


def test_shipped_prompts_cover_the_four_workloads_with_their_provenance():
    prompts = load_prompts(None)
    for workload in WORKLOADS:
        of_workload = [p for p in prompts if p.workload == workload]
        assert len(of_workload) >= 3, workload
        assert all(p.source and p.max_new_tokens == WORKLOADS[workload].output_tokens for p in of_workload)
    assert [p.workload for p in select_prompts(prompts, workloads=(), per_workload=1)] == list(WORKLOADS)


@pytest.mark.parametrize(("line", "message"), [
    ('{"id": "a", "workload": "poetry", "prompt": "x"}', "must be one of"),
    ('{"id": "a", "workload": "code-infill"}', '"prompt" must be a non-empty string'),
    ('{"id": "a", "workload": "code-infill", "prompt": "x", "max_new_tokens": 0}', "positive integer"),
    ('{"id": "a", "workload": "code-infill", "prompt": "x", "colour": 1}', "unknown field"),
    ("not json", "not valid JSON"),
])
def test_a_bad_prompts_line_is_named_in_one_line(line, message):
    with pytest.raises(UsageError, match=message) as info:
        parse_prompts(line + "\n", source="mine.jsonl")
    assert str(info.value).startswith("mine.jsonl, line 1: ")


def test_size_plan_full_where_it_fits_sampled_layers_otherwise_miniature_for_a_quick_cpu_run():
    config = load_model_config()
    assert plan_size(config, model="diffusion", device_kind="cuda", free_memory_bytes=139 * GIB,
                     quick=False).size == "full"
    sampled = plan_size(config, model="diffusion", device_kind="cuda", free_memory_bytes=40 * GIB, quick=False)
    assert sampled.size == "sampled-layers" and sampled.layer_scale == {"sliding": 12.5, "global": 5.0}
    assert sampled.vocab_scale == 1.0 and sampled.scaled
    on_cpu = plan_size(config, model="autoregressive", device_kind="cpu", free_memory_bytes=20 * GIB, quick=False)
    assert on_cpu.vocab_run == config.backbone.vocab_size // CPU_VOCAB_DIVISOR and on_cpu.vocab_scale == 32
    miniature = plan_size(config, model="diffusion", device_kind="cpu", free_memory_bytes=20 * GIB, quick=True)
    assert miniature.size == "miniature" and miniature.config.id.endswith("miniature") and not miniature.scaled
    assert miniature.config.diffusion.canvas_length == 256
    with pytest.raises(UsageError, match="do not fit"):
        plan_size(config, model="diffusion", device_kind="cuda", free_memory_bytes=24 * GIB, quick=False,
                  requested="full")


def test_scaled_timeline_weights_each_interval_by_what_it_stands_for():
    # start, layer starts, layer ends (counting 12.5 times), streamer event, end
    assert scaled_times([0.0, 1.0, 3.0, 4.0], [1.0, 12.5, 1.0, 1.0]) == [0.0, 1.0, 26.0, 27.0]
    assert scaled_times([0.0, 0.5, 2.0], [1.0, 1.0, 1.0]) == [0.0, 0.5, 2.0]


def test_terminal_table_sets_each_figure_beside_its_prediction():
    text = format_measured_run(factory.measured_run())
    assert "Measured run: openai-server (vllm 0.31.0) on cuda:0, complete" in text
    assert "long-form-drafting (3 prompts, concurrency 1): speedup" in text
    row = next(line for line in text.splitlines() if "total latency" in line)
    assert "(+20%)" in row and "(-10%)" in row


def test_the_miniature_a_quick_cpu_run_builds_is_predicted_as_that_model_with_the_transformers_engine():
    from pathlib import Path

    from dgprofile.app.predictor import predict_measured_scenario
    from dgprofile.model.workloads import workload_by_name
    from dgprofile.probes.verify.plan import miniature_config

    sample = results.load(Path(__file__).resolve().parents[3] / "samples" / "cpu-xeon-2core_20261126.dgprofile.json")
    released = load_model_config()
    scenario = {"workload": workload_by_name("short-completion"), "precision": "bf16", "concurrency": 1,
                "engine": "transformers"}
    small = predict_measured_scenario(sample.machine, sample.limits, sample.passes, config=miniature_config(released),
                                      **scenario)
    full = predict_measured_scenario(sample.machine, sample.limits, sample.passes, **scenario)
    assert small.scenario.engine == "transformers" and not isinstance(small.diffusion, Unavailable)
    assert isinstance(full.diffusion, Unavailable)  # 50 GB of bf16 weights do not fit this VM's RAM


@pytest.mark.parametrize("interruption", list(Interruption))
def test_an_interrupt_while_measuring_limits_keeps_them_and_runs_no_model(monkeypatch, interruption):
    from dgprofile.app.runner import MeasuredRunResult
    from dgprofile.app.verify import run as verify_run

    measured = factory.measured_h100_result()
    monkeypatch.setattr(verify_run, "run_bench",
                        lambda *args, **kwargs: MeasuredRunResult(result=measured, interruption=interruption))
    outcome = verify_run.run_verify(verify_run.VerifyOptions(random_weights=True, quick=True), base=None,
                                    command=("dgprofile", "verify"), progress=lambda message: None)
    assert outcome.interruption is interruption
    assert outcome.run.incomplete_reasons == (f"interrupted ({interruption.value}) {verify_run.LIMITS_INTERRUPTED}",)
    assert outcome.run.requests == () and outcome.result.limits == measured.limits
    assert results.loads(results.dumps(outcome.result)).measured_runs == (outcome.run,)


def test_an_accelerator_warms_up_at_every_measured_prompt_length_and_a_cpu_once():
    # The H200's first 512-token request paid 2.5 s of one-time cost, against a single 16-token warm-up.
    from dgprofile.app.verify import run as verify_run
    from dgprofile.app.verify.prompts import VerifyPrompt

    prompt = VerifyPrompt(prompt_id="p", workload="short-completion", text="", max_new_tokens=64, source="test")
    requests = [verify_run._Request(prompt, 64, tokens, 7) for tokens in (1024, 512, 1024, 2048)]
    assert verify_run.warmup_prompt_lengths(requests, "cuda:0") == (512, 1024, 2048)
    assert verify_run.warmup_prompt_lengths(requests, "cpu") == ()
    assert "(512, 1024, 2048 tokens)" in verify_run._warmup_text(requests, "cuda:0")
    assert verify_run._warmup_text(requests, "cpu") == "one short request per model before the measured ones"
