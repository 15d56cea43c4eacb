"""Output paths: checked before any work, never over an input or another output, saved elsewhere when writing
still fails after a run (dgprofile/cli/outputs.py), for every command that writes files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import result_factory as factory
from fakes.small_limits import use_small_limits

from dgprofile.cli import main, outputs
from dgprofile.exit_codes import ExitCode
from dgprofile.records import results

UNWRITABLE = "/proc/dgprofile-test-output"  # not even root can create a file in /proc


@pytest.fixture(autouse=True)
def small_sizes_and_no_decode(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import dgprofile.probes.decode as decode

    def decode_not_run_here(**kwargs):
        raise RuntimeError("decode benchmark replaced in this test")

    use_small_limits(monkeypatch, tmp_path)
    monkeypatch.setattr(decode, "run_decode_bench", decode_not_run_here)


@pytest.fixture()
def fleet(tmp_path: Path) -> Path:
    directory = tmp_path / "fleet"
    directory.mkdir()
    factory.write_result(directory / "h100.json", factory.measured_h100_result())
    factory.write_result(directory / "m3.json", factory.predicted_apple_result())
    return directory


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    out, err = capsys.readouterr()
    return int(exit_info.value.code), out, err


@pytest.mark.parametrize("args", [
    ["check", "--device", "cpu", "-o", f"{UNWRITABLE}.json"],
    ["check", "--device", "cpu", "--html", f"{UNWRITABLE}.html"],
    ["bench", "--device", "cpu", "-o", f"{UNWRITABLE}.json"],
    ["predict", "--hardware", "h100-sxm", "-o", f"{UNWRITABLE}.json"],
    ["probe", "-o", f"{UNWRITABLE}.json"],
])
def test_unwritable_output_is_refused_in_one_line_before_any_work(args: list[str],
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(args, capsys)
    assert code == ExitCode.OUTPUT_ERROR
    assert err.startswith(f"Error: {'--html' if '--html' in args else '-o/--output'} {UNWRITABLE}")
    assert "cannot write there" in err and err.count("\n") == 1
    assert out == ""  # nothing measured, predicted or probed


@pytest.mark.parametrize("option", ["-o", "--csv"])
def test_report_refuses_an_unwritable_page_or_csv(fleet: Path, option: str, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    extra = ["-o", str(tmp_path / "fleet.html")] if option == "--csv" else []
    code, out, err = run(["report", str(fleet), option, f"{UNWRITABLE}.x", *extra], capsys)
    assert code == ExitCode.OUTPUT_ERROR and out == ""
    assert f"{UNWRITABLE}.x: cannot write there" in err and not (tmp_path / "fleet.html").exists()


def test_compare_refuses_an_unwritable_page(fleet: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["compare", str(fleet / "h100.json"), str(fleet / "m3.json"), "-o", UNWRITABLE], capsys)
    assert code == ExitCode.OUTPUT_ERROR and out == ""


def test_check_refuses_an_unwritable_default_result_directory(monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir("/proc")
    code, _, err = run(["check", "--device", "cpu"], capsys)
    assert code == ExitCode.OUTPUT_ERROR
    assert err.startswith("Error: -o/--output dgprofile-results/") and "... measuring" not in err


def test_check_same_json_for_result_and_page_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    same = tmp_path / "same.json"
    code, _, err = run(["check", "--device", "cpu", "-o", str(same), "--html", str(same)], capsys)
    assert code == ExitCode.OUTPUT_ERROR
    assert err == (f"Error: --html {same}: the same file as -o/--output {same}; writing it would destroy that\n")
    assert not same.exists()


def test_report_output_over_one_of_its_inputs_is_refused(fleet: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = (fleet / "h100.json").read_bytes()
    code, _, err = run(["report", str(fleet), "-o", str(fleet / "h100.json")], capsys)
    assert code == ExitCode.OUTPUT_ERROR
    assert err == (f"Error: -o/--output {fleet / 'h100.json'}: the same file as the input {fleet / 'h100.json'}; "
                   "writing it would destroy that\n")
    assert (fleet / "h100.json").read_bytes() == before


def test_collisions_are_found_through_links_and_relative_names(fleet: Path, monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(fleet)
    (fleet / "alias.html").symlink_to(fleet / "m3.json")
    assert run(["report", "h100.json", "m3.json", "-o", "alias.html"], capsys)[0] == ExitCode.OUTPUT_ERROR
    assert run(["report", ".", "-o", "page.html", "--csv", "./page.html"], capsys)[0] == ExitCode.OUTPUT_ERROR
    assert run(["compare", "h100.json", "m3.json", "-o", "../fleet/m3.json"], capsys)[0] == ExitCode.OUTPUT_ERROR


def test_a_result_that_cannot_be_written_after_the_run_is_saved_elsewhere_and_said_where(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "out" / "cpu.dgprofile.json"
    real_write = outputs.write_atomic

    def disk_gone(path: Path, text: str) -> None:
        if Path(path).parent == target.parent:
            raise OSError(28, "No space left on device")
        real_write(path, text)

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(outputs, "write_atomic", disk_gone)
    code, out, err = run(["check", "--device", "cpu", "-o", str(target)], capsys)
    assert code == ExitCode.OUTPUT_ERROR
    saved = tmp_path / "dgprofile-results" / "cpu.dgprofile.json"
    assert (f"Error: cannot write {target} (-o/--output): No space left on device; saved to "
            f"dgprofile-results/cpu.dgprofile.json instead") in err
    assert results.load(saved).limits.stream_read_bytes_per_s > 0
    assert (tmp_path / "dgprofile-results" / "cpu.dgprofile.html").exists()
    assert "verdict:" in out  # the verdict is still printed


def test_default_result_names_never_overwrite_and_never_start_with_a_dash(monkeypatch: pytest.MonkeyPatch,
                                                                          tmp_path: Path) -> None:
    from datetime import datetime, timezone

    from dgprofile.cli import check

    monkeypatch.setattr(check.socket, "gethostname", lambda: "--rf")
    path = check.default_result_path(anonymize=False, started=datetime(2026, 11, 26, tzinfo=timezone.utc))
    assert path == Path("dgprofile-results/rf_20261126-000000.dgprofile.json")
    (tmp_path / "r.dgprofile.json").write_text("")
    assert outputs.free_path(tmp_path / "r.dgprofile.json") == tmp_path / "r-2.dgprofile.json"


def test_an_existing_directory_as_output_is_refused_like_any_unusable_output(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["predict", "--hardware", "h100-sxm", "-o", str(tmp_path)], capsys)
    assert code == ExitCode.OUTPUT_ERROR
    assert err == f"Error: -o/--output {tmp_path}: cannot write there: it is a directory\n"


def test_report_output_over_a_hard_link_to_one_of_its_inputs_is_refused(
        fleet: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Inputs and outputs are told apart by device and inode: another name for an input is that input."""
    other_name = tmp_path / "fleet.html"
    os.link(fleet / "h100.json", other_name)
    before = other_name.read_bytes()
    code, _, err = run(["report", str(fleet), "-o", str(other_name)], capsys)
    assert code == ExitCode.OUTPUT_ERROR
    assert err == (f"Error: -o/--output {other_name}: the same file as the input {fleet / 'h100.json'}; "
                   "writing it would destroy that\n")
    assert other_name.read_bytes() == before
