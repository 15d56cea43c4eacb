"""`dgprofile verify` against real OpenAI-compatible servers: `transformers serve` on loopback serving the tiny
checkpoints. The last test stops a server mid-run."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from dgprofile.app.verify.run import VerifyOptions, run_verify
from dgprofile.cli import cli
from dgprofile.exit_codes import ExitCode
from dgprofile.records import results
from dgprofile.records.values import Unavailable
from dgprofile.records.verification import MeasuredFigure


def write_prompts(path: Path, count: int = 1) -> Path:
    lines = [{"id": f"p{i}", "workload": "short-completion", "prompt": f"Say hello to team {i}.",
              "max_new_tokens": 6} for i in range(count)]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def test_verify_streams_from_both_servers_at_each_concurrency(tiny_servers, cpu_check_result, tmp_path):
    dg, ar = tiny_servers
    outcome = CliRunner().invoke(cli, [
        "verify", "--dg-url", dg.url, "--dg-served-model", str(dg.checkpoint), "--ar-url", ar.url + "/v1",
        "--ar-served-model", str(ar.checkpoint), "--concurrency", "1", "--concurrency", "2",
        "--prompts", str(write_prompts(tmp_path / "p.jsonl")), "--result", str(cpu_check_result), "--no-html"])
    assert outcome.exit_code == ExitCode.OK, outcome.output
    (run,) = results.load(cpu_check_result).measured_runs
    assert run.backend == "openai-server" and run.status == "complete", run.incomplete_reasons
    assert isinstance(run.engine_version, Unavailable)  # transformers serve has no /version
    assert [(w.workload, w.concurrency) for w in run.workloads] == [("short-completion", 1), ("short-completion", 2)]
    assert len(run.requests) == 2 * (1 + 2) and not any(r.faults for r in run.requests)
    for stats in run.workloads:
        ar_stats = stats.autoregressive
        assert ar_stats.ttft_seconds.median <= ar_stats.total_latency_seconds.median
        assert ar_stats.output_tokens.median == 6  # the server's usage, at greedy length
        assert isinstance(ar_stats.tokens_per_s, MeasuredFigure) and isinstance(ar_stats.pass_seconds, MeasuredFigure)
        # DiffusionGemma streams one committed canvas per chunk, and transformers serve counts canvases as usage.
        assert isinstance(stats.diffusion.ttft_seconds, MeasuredFigure)
        assert "counts canvases" in stats.diffusion.output_tokens.reason
        assert isinstance(stats.speedup, MeasuredFigure)
        assert isinstance(stats.edit_distance_between_models, MeasuredFigure)
    assert "concurrency 2" in outcome.output


def test_faults_are_recorded_per_request_and_finished_requests_are_kept(tiny_servers, cpu_check_result, tmp_path):
    dg, ar = tiny_servers
    stopped = []

    def stop_after_first_request(message: str) -> None:
        if message.startswith("Gemma 4:") and "requests done" in message and not stopped:
            ar.stop()  # the server goes away mid-run
            stopped.append(message)

    options = VerifyOptions(dg_url=dg.url, dg_served_model="not-the-served-model", ar_url=ar.url,
                            ar_served_model=str(ar.checkpoint), concurrencies=(1,), timeout_seconds=30,
                            prompts_path=write_prompts(tmp_path / "p.jsonl", count=3))
    outcome = run_verify(options, base=results.load(cpu_check_result), command=("dgprofile", "verify"),
                         progress=stop_after_first_request)
    requests = outcome.run.requests
    kinds = [(r.role, r.faults[0].kind if r.faults else "ok") for r in requests]
    # The DiffusionGemma server refuses a model it does not serve; Gemma 4's server answers once, then is gone.
    assert kinds[:3] == [("diffusion", "http-error")] * 3
    assert kinds[3] == ("autoregressive", "ok") and {k for _, k in kinds[4:]} <= {"unreachable", "stream-cut"}
    assert "HTTP 4" in requests[0].faults[0].message
    assert outcome.run.status == "incomplete" and "5 of 6 requests failed" in outcome.run.incomplete_reasons[0]
    (stats,) = outcome.run.workloads
    assert stats.autoregressive.failed == 2 and stats.autoregressive.ttft_seconds.samples == 1
