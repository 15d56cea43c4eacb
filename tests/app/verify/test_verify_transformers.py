"""`dgprofile verify` with transformers on tiny checkpoints saved like real ones: real generate on the CPU."""

from __future__ import annotations

import json
import types
from pathlib import Path

from click.testing import CliRunner

from dgprofile.app.verify.run import VerifyOptions, run_verify
from dgprofile.cli import cli
from dgprofile.errors import UsageError
from dgprofile.exit_codes import ExitCode
from dgprofile.records import results
from dgprofile.records.values import Unavailable
from dgprofile.records.verification import MeasuredFigure


def write_prompts(path: Path) -> Path:
    lines = [{"id": "greet", "workload": "short-completion", "prompt": "Say hello to the team.", "max_new_tokens": 8},
             {"id": "colours", "workload": "short-completion", "prompt": "Name three colours.", "max_new_tokens": 8}]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def test_verify_adds_a_measured_run_of_both_checkpoints_to_a_check_result(tiny_checkpoints, cpu_check_result,
                                                                          tmp_path):
    dg, ar = tiny_checkpoints
    before = results.load(cpu_check_result)
    outcome = CliRunner().invoke(cli, [
        "verify", "--dg-model", str(dg), "--ar-model", str(ar), "--prompts", str(write_prompts(tmp_path / "p.jsonl")),
        "--steps", "2", "--result", str(cpu_check_result), "--device", "cpu", "--no-html"])
    assert outcome.exit_code == ExitCode.OK, outcome.output
    result = results.load(cpu_check_result)
    (run,) = result.measured_runs
    assert run.backend == "transformers" and run.status == "complete", run.incomplete_reasons
    assert [(m.role, m.source, m.model_id) for m in run.models] == [
        ("diffusion", "checkpoint", str(dg)), ("autoregressive", "checkpoint", str(ar))]
    assert len(run.requests) == 4 and not any(r.faults for r in run.requests)
    (stats,) = run.workloads
    assert stats.workload == "short-completion" and stats.prompts == 2
    for mode in (stats.diffusion, stats.autoregressive):
        for field in ("ttft_seconds", "first_useful_draft_seconds", "total_latency_seconds", "tokens_per_s",
                      "pass_seconds"):
            assert isinstance(getattr(mode, field), MeasuredFigure), field
        assert mode.output_tokens.median <= 8
    assert stats.diffusion.steps_per_canvas.median == 2  # --steps fixes the denoise passes per canvas
    assert stats.autoregressive.tokens_per_forward.median == 1
    assert 0 <= stats.edit_distance_between_models.median <= 1
    # Drafts converge to the final output: the last point of every request is the output itself.
    for record in run.requests:
        assert record.drafts and record.drafts[-1].edit_distance_to_final == 0
        assert record.first_useful_draft_seconds <= record.total_latency_seconds
    # A tiny checkpoint is not the released model: no prediction beside it, and the verdict stays predicted.
    assert isinstance(stats.scenario, Unavailable) and "not the released architecture" in stats.scenario.reason
    assert result.predictions.verdict == before.predictions.verdict
    assert "Measured run: transformers" in outcome.output and "time to first useful draft" in outcome.output


def test_an_absent_checkpoint_is_one_line_saying_what_was_looked_for(tmp_path):
    outcome = CliRunner().invoke(cli, ["verify", "--dg-model", str(tmp_path / "missing"), "--ar-model",
                                       "nobody/no-such-model", "--result",
                                       str(Path(__file__).resolve().parents[3] / "samples" /
                                           "cpu-xeon-2core_20261126.dgprofile.json"),
                                       "-o", str(tmp_path / "out.json"), "--device", "cpu"])
    assert isinstance(outcome.exception, UsageError)  # `dgprofile.cli.main` exits 3 with its one line
    message = str(outcome.exception)
    assert "no checkpoint found" in message and "--random-weights" in message and "\n" not in message


def test_verify_needs_checkpoints_or_random_weights():
    outcome = CliRunner().invoke(cli, ["verify", "--dg-model", "x"])
    assert outcome.exit_code != 0
    assert "give both --dg-model and --ar-model" in str(outcome.exception)


def test_ctrl_c_keeps_the_requests_that_finished(tiny_checkpoints, cpu_check_result, tmp_path):
    dg, ar = tiny_checkpoints

    def interrupt_at_the_second_request(message: str) -> None:
        if "request 2 of" in message:
            raise KeyboardInterrupt

    options = VerifyOptions(dg_model=str(dg), ar_model=str(ar), steps=2, device="cpu",
                            prompts_path=write_prompts(tmp_path / "p.jsonl"))
    outcome = run_verify(options, base=results.load(cpu_check_result), command=("dgprofile", "verify"),
                         progress=interrupt_at_the_second_request)
    assert outcome.interrupted and outcome.run.status == "incomplete"
    assert outcome.run.incomplete_reasons == ("interrupted while DiffusionGemma: short-completion, request 2 of 2 "
                                              "(colours)",)
    assert [(r.role, r.prompt_id) for r in outcome.run.requests] == [("diffusion", "greet")]
    assert outcome.result.measured_runs == (outcome.run,)


def tiny_config():
    """The released configuration shrunk to test size (the size plan's arithmetic is unchanged)."""
    import dataclasses

    from dgprofile.probes.verify.plan import miniature_config
    from dgprofile.specs.model_config import load_model_config

    small = miniature_config(load_model_config())
    backbone = dataclasses.replace(small.backbone, hidden_size=64, intermediate_size=64, moe_intermediate_size=16,
                                   num_experts=4, top_k_experts=2, vocab_size=512,
                                   sliding_attention=dataclasses.replace(small.backbone.sliding_attention,
                                                                         head_dim=16),
                                   global_attention=dataclasses.replace(small.backbone.global_attention,
                                                                        head_dim=32))
    return dataclasses.replace(small, backbone=backbone,
                               diffusion=dataclasses.replace(small.diffusion, canvas_length=16,
                                                             self_conditioning_size=64))


def test_random_weights_with_sampled_layers_count_each_layer_as_the_layers_it_stands_for(monkeypatch):
    from dgprofile.probes.verify import transformers_run
    from dgprofile.probes.verify.plan import SizePlan

    config = tiny_config()
    clock = iter(range(100_000))
    fake_time = types.SimpleNamespace(perf_counter=lambda: float(next(clock)))  # every mark one second later
    monkeypatch.setattr(transformers_run, "time", fake_time)
    traces = {}
    for scale in (2.0, 10.0):
        plan = SizePlan(size="sampled-layers", config=config, layer_types=("sliding", "global"),
                        layer_scale={"sliding": scale, "global": scale}, vocab_run=512, vocab_scale=1.0,
                        description="test")
        loaded = transformers_run.build_random("diffusion", plan, device="cpu", dtype="fp32", seed=0)
        traces[scale] = transformers_run.generate_one(loaded, transformers_run.PromptInput(
            text=None, prompt_tokens=8, max_new_tokens=16, steps=3, ignore_eos=True, seed=1))
    plain, scaled = traces[2.0], traces[10.0]
    assert scaled.denoise_passes == plain.denoise_passes == 3 and scaled.output_tokens == 16
    assert scaled.snapshots[0].text == Unavailable("random weights: no tokenizer, so no text")
    # Between two drafts the decoder runs its two layers: each one-second layer counts 10 times instead of 2.
    assert [b - a for a, b in zip(plain.pass_seconds, scaled.pass_seconds, strict=True)] == [16.0, 16.0]
