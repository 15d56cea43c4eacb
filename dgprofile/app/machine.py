"""`probe`, and the first step of `bench` and `check`: describe this machine, and keep the description in a file.

The probes find what the machine is (``dgprofile.probes.collect``); this layer builds the result file and, when
asked, anonymizes it. The probes are imported on first use, so the CLI starts without their libraries.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from dgprofile.records.machine import Machine
from dgprofile.records.results import ResultFile, RunInfo, anonymize_result, anonymize_salt, new_result
from dgprofile.records.results import anonymize as anonymize_machine


def probe_machine(*, anonymize: bool = False) -> Machine:
    """Run every probe (no benchmarks) and return what they found, optionally with identities hashed."""
    from dgprofile.probes.collect import collect_machine

    machine = collect_machine()
    return anonymize_machine(machine, salt=anonymize_salt()) if anonymize else machine


def probe_result(machine: Machine, *, command: tuple[str, ...], started_at: datetime) -> ResultFile:
    """A result file holding only the probe's findings (no limits, passes or predictions)."""
    finished_at = datetime.now(timezone.utc)
    run = RunInfo(command=command, origin="measured", label=machine.identity.hostname,
                  started_at=started_at.isoformat(timespec="seconds"),
                  finished_at=finished_at.isoformat(timespec="seconds"),
                  duration_seconds=(finished_at - started_at).total_seconds(), status="complete",
                  incomplete_reasons=())
    return new_result(run=run, machine=machine)


def anonymized(result: ResultFile) -> ResultFile:
    """``--anonymize``: the result with the machine's identities hashed wherever they appear, and the user's home
    directory written as ``~`` (see ``dgprofile.records.results.anonymize_result``)."""
    return anonymize_result(result, salt=anonymize_salt(), home_directory=str(Path.home()))
