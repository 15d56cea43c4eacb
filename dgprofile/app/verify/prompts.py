"""The prompts `verify` sends: the shipped set (``dgprofile/data/verify-prompts.jsonl``) or a team's own file.

One JSON object per line: ``id`` (unique), ``workload`` (one of the four), ``prompt`` (the user's message), and
optionally ``max_new_tokens`` (default: the workload's output length) and ``source`` (where the text comes from).
The shipped prompts were written for dgprofile or cut from its own source files; each says which.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from dgprofile.errors import UsageError
from dgprofile.model.workloads import WORKLOADS

SHIPPED_PROMPTS = "verify-prompts.jsonl"


@dataclass(frozen=True)
class VerifyPrompt:
    """One prompt of one workload and the output budget its requests get."""

    prompt_id: str
    workload: str
    text: str
    max_new_tokens: int
    source: str


def _parse_line(data: Any, where: str) -> VerifyPrompt:
    if not isinstance(data, dict):
        raise UsageError(f"{where}: expected a JSON object")
    unknown = sorted(set(data) - {"id", "workload", "prompt", "max_new_tokens", "source"})
    if unknown:
        raise UsageError(f"{where}: unknown field(s) {', '.join(unknown)}")
    prompt_id, workload, text = data.get("id"), data.get("workload"), data.get("prompt")
    if not isinstance(prompt_id, str) or not prompt_id:
        raise UsageError(f"{where}: \"id\" must be a non-empty string")
    if workload not in WORKLOADS:
        raise UsageError(f"{where}: \"workload\" must be one of {', '.join(WORKLOADS)}, not {workload!r}")
    if not isinstance(text, str) or not text.strip():
        raise UsageError(f"{where}: \"prompt\" must be a non-empty string")
    budget = data.get("max_new_tokens", WORKLOADS[workload].output_tokens)
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise UsageError(f"{where}: \"max_new_tokens\" must be a positive integer")
    source = data.get("source", "the prompts file")
    if not isinstance(source, str):
        raise UsageError(f"{where}: \"source\" must be a string")
    return VerifyPrompt(prompt_id, workload, text, budget, source)


def parse_prompts(text: str, *, source: str) -> tuple[VerifyPrompt, ...]:
    """Every prompt of a JSON-lines text; UsageError naming the file and line of the first problem."""
    prompts: list[VerifyPrompt] = []
    seen: set[str] = set()
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{source}, line {number}"
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UsageError(f"{where}: not valid JSON ({exc.msg})") from exc
        prompt = _parse_line(data, where)
        if prompt.prompt_id in seen:
            raise UsageError(f"{where}: the id {prompt.prompt_id!r} is used twice")
        seen.add(prompt.prompt_id)
        prompts.append(prompt)
    if not prompts:
        raise UsageError(f"{source}: no prompts")
    return tuple(prompts)


def load_prompts(path: Path | None) -> tuple[VerifyPrompt, ...]:
    """The prompts of ``path``, or the shipped set."""
    if path is None:
        text = resources.files("dgprofile.data").joinpath(SHIPPED_PROMPTS).read_text(encoding="utf-8")
        return parse_prompts(text, source=SHIPPED_PROMPTS)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--prompts {path}: cannot read ({exc})") from exc
    return parse_prompts(text, source=str(path))


def select_prompts(prompts: tuple[VerifyPrompt, ...], *, workloads: tuple[str, ...],
                   per_workload: int | None) -> tuple[VerifyPrompt, ...]:
    """The prompts of the chosen workloads (all when none is chosen), at most ``per_workload`` of each."""
    chosen = workloads or tuple(WORKLOADS)
    selected: list[VerifyPrompt] = []
    for workload in chosen:
        of_workload = [p for p in prompts if p.workload == workload]
        selected += of_workload[:per_workload] if per_workload is not None else of_workload
    if not selected:
        raise UsageError(f"no prompts for {', '.join(chosen)} in the prompts file")
    return tuple(selected)
