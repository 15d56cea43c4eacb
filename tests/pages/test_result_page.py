"""The result page (`dgprofile check`'s HTML) checked structurally: sections, numbers, reasons, escaping."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import result_factory as factory
from bs4 import BeautifulSoup
from html_soup import page_soup
from jinja2 import StrictUndefined

from dgprofile.pages.environment import environment, table_rows, wrappable
from dgprofile.pages.result_page import render_result_html, verify_commands
from dgprofile.pages.views import Cell, RowView, TableView
from dgprofile.records.codec import to_json
from dgprofile.records.results import load
from dgprofile.records.values import Unavailable
from dgprofile.text.units import number_key

SECTIONS = ("verdict", "measured", "machine", "limits", "roofline", "speedup", "passes", "memory", "basis", "verify")


def page(result) -> BeautifulSoup:
    return page_soup(render_result_html(result))


def section_text(soup: BeautifulSoup, section_id: str) -> str:
    return " ".join(soup.find("section", id=section_id).get_text(" ").split())


@pytest.fixture(scope="module")
def h100_page() -> BeautifulSoup:
    return page(factory.measured_h100_result())


def test_environment_escapes_and_refuses_undefined_names() -> None:
    env = environment()
    assert env.autoescape is True
    assert env.undefined is StrictUndefined
    assert environment() is env  # built once


def test_wrappable_breaks_only_long_words_and_escapes_every_cell() -> None:
    # Short words only: the text escaped, no break opportunity (the quick path most fleet cells take).
    assert wrappable("CPU only <b> & 'q4_k_m'") == "CPU only &lt;b&gt; &amp; &#39;q4_k_m&#39;"
    assert wrappable("") == ""
    # A long word breaks after its separators and dots, escaped piece by piece; the words around it do not.
    assert wrappable("in samples/fleet-local/<x>.dgprofile.json now") == (
        "in samples/<wbr>fleet-<wbr>local/<wbr>&lt;x&gt;.<wbr>dgprofile.<wbr>json now")


def test_table_rows_escape_every_value_sort_numbers_and_hide_rows_past_the_first_page() -> None:
    hostile = "<b>&\"'"
    table = TableView("", ("a", "b"), tuple(
        RowView((Cell(f"{hostile}/a-long-path-name.json", detail=hostile, tone="warning"),
                 Cell(f"{i} tok/s", number_key(i))), tone="muted" if i else "", filter_text=f"{hostile} {i}")
        for i in range(3)), page_size=2, table_id="t")
    soup = BeautifulSoup(f"<table><tbody>{table_rows(table)}</tbody></table>", "html.parser")
    rows = soup.find_all("tr")
    assert [row.get("class") for row in rows] == [None, ["tone-muted"], ["tone-muted"]]
    assert [row["data-filter"] for row in rows] == [f"{hostile} {i}" for i in range(3)]
    assert [row.has_attr("hidden") for row in rows] == [False, False, True]
    first, number = rows[0].find_all("td")
    assert first["class"] == ["tone-warning"] and not first.has_attr("data-sort")
    assert first.find("span", class_="cell-detail").get_text() == hostile
    assert first.find("span").extract() and first.get_text() == f"{hostile}/a-long-path-name.json"
    assert len(first.find_all("wbr")) == 4  # a long word breaks after each separator
    assert (number["data-sort"], number.get_text()) == ("0.0", "0\xa0tok/s")  # a number stays with its unit
    assert "<b>" not in str(table_rows(table))


def test_every_section_is_present_once_in_order(h100_page: BeautifulSoup) -> None:
    ids = [s["id"] for s in h100_page.find_all("section")]
    assert ids == list(SECTIONS)
    all_ids = [tag["id"] for tag in h100_page.find_all(id=True)]
    assert len(all_ids) == len(set(all_ids)), "element ids must be unique in the page"


def test_headline_verdict_with_band_reasons_and_advice(h100_page: BeautifulSoup) -> None:
    verdict = h100_page.find("div", class_="verdict")
    assert "tone-applies" in verdict["class"]
    text = " ".join(verdict.get_text(" ").split())
    assert "DiffusionGemma is 5.1x faster than autoregressive Gemma 4" in text
    assert "4.3x to 5.9x" in text
    assert "a denoise pass costs 3.0x an AR step" in text
    assert "verify on real weights" in text
    assert "long-form-drafting, fp8, concurrency 1, engine vllm" in text


def test_machine_shows_memory_class_and_usable_memory(h100_page: BeautifulSoup) -> None:
    text = section_text(h100_page, "machine")
    assert "unified-memory class discrete" in text
    assert "78.6 GiB (NVML free memory)" in text
    assert "3.35 TB/s (5120-bit bus" in text


def test_limits_show_median_iqr_cv_and_instability_advice() -> None:
    result = factory.result(limits_=factory.limits(unstable=(factory.busy_gpu_flag(),)))
    text = section_text(page(result), "limits")
    assert "streaming read 3.07 TB/s" in text
    assert "bf16 ridge 235 FLOP/byte" in text
    assert "CV 1.0%" in text
    assert "15 x 4 loops, cuda-graph-events" in text
    assert "busy-gpu: another process used the GPU" in text
    assert "Unstable measurements" in text and "stop other GPU work and rerun" in text


def test_charts_are_inline_svg_with_their_titles(h100_page: BeautifulSoup) -> None:
    titles = [" ".join(svg.find(class_="title").get_text(" ").split()) for svg in h100_page.find_all("svg")]
    assert any(t.startswith("Roofline: fp8 matmul peak over measured streaming-read") for t in titles)
    assert any(t.startswith("Speedup against output length") for t in titles)
    assert any(t.startswith("Speedup against concurrency") for t in titles)
    assert any(t.startswith("Time per pass") for t in titles)
    assert any(t.startswith("DiffusionGemma's need per precision against the usable memory") for t in titles)
    roofline = section_text(h100_page, "roofline")
    assert "Ridge at 469 FLOP/byte" in roofline
    assert "AR decode step, fp8, c=1 (measured)" in roofline and "DG denoise pass, fp8, c=4 (measured)" in roofline


def test_pass_breakdown_names_its_terms(h100_page: BeautifulSoup) -> None:
    text = section_text(h100_page, "passes")
    for term in ("weights", "sampler", "overhead"):
        assert term in text
    assert "DiffusionGemma 16 x DG denoise pass" in text
    assert "All 24 measured passes" in text


def test_memory_fit_per_precision(h100_page: BeautifulSoup) -> None:
    rows = h100_page.find("section", id="memory").find("table").find_all("tr")[1:]
    cells = [[td.get_text(" ", strip=True) for td in row.find_all("td")] for row in rows]
    assert [c[0] for c in cells] == ["bf16", "fp8", "int4"]
    assert cells[0][3] == "52.9 GiB" and cells[0][6] == "fits"


def test_basis_names_measured_datasheet_and_calibrated_sources(h100_page: BeautifulSoup) -> None:
    text = section_text(h100_page, "basis")
    assert "measured NVIDIA H100 80GB HBM3 (cuda:0), timed with cuda-graph-events" in text
    assert "datasheet NVIDIA H100 SXM5 80GB: https://resources.nvidia.com" in text
    assert "calibrated calibration-runs.json: vllm-blog-h100-fp8" in text
    assert "vllm-blog-h100-fp8 h100-sxm vllm 5.1x 5.3x dg_tokens_per_s +4.2%" in text


def test_verify_commands_serve_and_bench_both_models_with_matching_settings(h100_page: BeautifulSoup) -> None:
    code = h100_page.find("section", id="verify").find("code").get_text()
    serve = re.findall(r"vllm serve (\S+)", code)
    bench = re.findall(r"vllm bench serve --model (\S+)", code)
    assert serve == bench == ["google/diffusiongemma-26B-A4B-it", "google/gemma-4-26B-A4B-it"]
    assert """--diffusion-config '{"canvas_length":256,"max_denoising_steps":16}'""" in code
    for flag in ("--dataset-name random", "--random-input-len 512", "--random-output-len 1024", "--ignore-eos",
                 "--max-concurrency 1"):
        assert code.count(flag) == 2, flag
    assert code.count("--quantization fp8") == 2


def test_verify_commands_follow_the_scenario() -> None:
    scenario = factory.prediction(workload="code-infill", precision="bf16", concurrency=4).scenario
    code = verify_commands(scenario)
    assert "--quantization" not in code
    assert code.count("--max-concurrency 4") == 2 and code.count("--random-input-len 2048") == 2
    assert '"max_denoising_steps":12' in code


def test_predicted_file_says_nothing_was_measured_and_uses_datasheet_ceilings() -> None:
    soup = page(factory.predicted_apple_result())
    assert ("Measured limits unavailable: predicted from the datasheet of Apple M3 Max (40-core GPU): nothing was "
            "measured.") in section_text(soup, "limits")
    assert soup.find("h1").get_text() == "DiffusionGemma vs Gemma 4 on Apple M3 Max (40-core GPU)"
    assert "The machine description unavailable: predicted from the datasheet" in section_text(soup, "machine")
    roofline = section_text(soup, "roofline")
    assert "Shown instead: the datasheet limits the prediction used" in roofline
    assert "fp16 matmul peak over datasheet bandwidth" in roofline
    assert "This machine has no NVIDIA or AMD GPU" in section_text(soup, "verify")
    assert "tone-does-not-apply" in soup.find("div", class_="verdict")["class"]
    assert "DiffusionGemma is 4.5x slower" in section_text(soup, "verdict")


def test_probe_only_file_renders_every_section_with_its_reason() -> None:
    soup = page(factory.probe_only_result())
    for section_id in ("verdict", "speedup", "memory"):
        assert "Predictions unavailable: probe only: nothing was predicted." in section_text(soup, section_id)
    assert "Measured limits unavailable: probe only: limits were not measured." in section_text(soup, "limits")
    assert "Measured passes unavailable: probe only: passes were not measured." in section_text(soup, "passes")
    assert "No accelerator found" in section_text(soup, "machine")
    assert "Incomplete run: probe only" in soup.find("p", class_="banner").get_text()
    assert not soup.find_all("svg")


def test_unavailable_machine_and_curve_points_keep_their_reasons() -> None:
    predictions = factory.predictions()
    flat = factory.curve("speedup-vs-concurrency", "concurrent requests", predictions.headline.scenario,
                         [(1, 5.0)], 197.0)
    predictions = type(predictions)(**{**predictions.__dict__, "curves": (flat,)})
    soup = page(factory.result(machine_=Unavailable("probe crashed"), predictions_=predictions))
    assert "The machine description unavailable: probe crashed." in section_text(soup, "machine")
    assert "Speedup against concurrency: unavailable (fewer than two points" in section_text(soup, "speedup")


def test_page_is_self_contained() -> None:
    html = render_result_html(factory.measured_h100_result())
    soup = page_soup(html)
    csp = soup.find("meta", attrs={"http-equiv": "Content-Security-Policy"})["content"]
    assert "default-src 'none'" in csp
    assert not soup.find_all("link")
    assert not [s for s in soup.find_all("script") if s.get("src")]
    assert not [tag for tag in soup.find_all(src=True)]
    assert not [a for a in soup.find_all("a", href=True) if not a["href"].startswith("#")]
    assert "kozea.github.io" not in html and "@import" not in html


def test_embedded_result_json_is_the_result() -> None:
    result = factory.hostile_result()
    soup = page(result)
    data = soup.find("script", id="dgprofile-result", type="application/json").string
    assert json.loads(data) == json.loads(json.dumps(to_json(result)))


def test_hostile_hostname_and_gpu_name_are_escaped_everywhere() -> None:
    html = render_result_html(factory.hostile_result())
    assert "<script>alert" not in html
    soup = page_soup(html)
    scripts = soup.find_all("script")
    assert all(s.get("type") == "application/json" or "alert(" not in s.get_text() for s in scripts)
    assert factory.HOSTILE_TEXT in soup.find("h1").get_text()
    hostname = soup.find("section", id="machine").find("dt", string="hostname").find_next_sibling("dd")
    assert hostname.get_text() == f"host{factory.HOSTILE_TEXT}"
    device = soup.find("section", id="machine").find("h3", string=re.compile("^Device 0"))
    assert device.get_text() == f"Device 0: H100 {factory.HOSTILE_TEXT}"


def test_roofline_of_a_format_without_its_own_peak_uses_the_fastest_measured_peak() -> None:
    """int4 computed in fp32 on a CPU: a bf16 roof would put the measured pass above the roof."""
    limits = factory.limits()
    limits = type(limits)(**{**limits.__dict__, "peak_flops_per_s": {"bf16": 1.26e10, "fp32": 5.98e10},
                             "ridge_flop_per_byte": {}, "ridge_tokens": {}})
    result = factory.result(limits_=limits, passes_=factory.passes(precisions=("int4",)),
                            predictions_=factory.predictions(precisions=("int4", "fp8")))
    text = section_text(page(result), "roofline")
    assert "Roofline: fp32 matmul peak over measured streaming-read bandwidth" in text
    assert "DG denoise pass, int4, c=1 (measured)" in text


def test_a_measured_pass_above_the_roof_is_called_out() -> None:
    limits = factory.limits(peak_bf16_flops_per_s=1e14)
    limits = type(limits)(**{**limits.__dict__, "peak_flops_per_s": {"bf16": 1e14}})
    result = factory.result(limits_=limits, passes_=factory.passes(flops_per_s=7.2e14, precisions=("bf16",)),
                            predictions_=factory.predictions(precisions=("bf16",)))
    text = section_text(page(result), "roofline")
    assert "Above the roof: DG denoise pass, bf16, c=1 (measured)" in text
    assert "faster than the bf16 matmul peak measured at the square shape" in text
    assert "Above the roof" not in section_text(page(factory.measured_h100_result()), "roofline")


SAMPLES = Path(__file__).resolve().parents[2] / "samples"


@pytest.fixture(scope="module")
def cpu_page() -> BeautifulSoup:
    return page(load(SAMPLES / "cpu-xeon-2core_20261126.dgprofile.json"))


def test_roofline_labels_modelled_int4_points_as_modelled_not_measured() -> None:
    """The CPU run measured bf16 passes only; with an int4 headline the roofline plots the int4 passes modelled
    from them, and says so."""
    import dataclasses

    result = load(SAMPLES / "cpu-xeon-2core_20261126.dgprofile.json")
    headline = result.predictions.headline
    int4_headline = dataclasses.replace(headline, scenario=dataclasses.replace(headline.scenario, precision="int4"))
    soup = page(dataclasses.replace(result, predictions=dataclasses.replace(result.predictions,
                                                                            headline=int4_headline)))
    legend = [t.get_text() for t in soup.select("section#roofline svg .legend text")]
    int4 = [label for label in legend if ", int4, " in label]
    assert int4 and all(label.endswith("(modelled from the measured passes)") for label in int4), legend


def test_the_first_useful_draft_is_defined_under_the_table_that_shows_it(h100_page: BeautifulSoup) -> None:
    table = h100_page.find("section", id="verdict").find(class_="table-block")
    assert "time to first useful draft" in table.get_text()
    assert "normalised edit distance 0.1 of the final output" in table.find(class_="table-note").get_text()


def test_a_cpu_only_run_gets_no_gpu_or_mac_advice(cpu_page: BeautifulSoup) -> None:
    text = section_text(cpu_page, "limits")
    assert "Unstable measurements" in text
    assert "nvidia-smi" not in text and "Activity Monitor" not in text


def test_memory_fit_table_need_is_what_its_bar_adds_up_to() -> None:
    predictions = load(SAMPLES / "h100-sxm_20261126.dgprofile.json").predictions
    for fit in predictions.memory:
        parts = (fit.weights_bytes + fit.diffusion_kv_cache_bytes + fit.diffusion_buffers_bytes
                 + fit.activation_headroom_bytes)
        assert abs(parts - fit.diffusion_needed_bytes) <= 4


def prose_paren_depth(text: str) -> int:
    """How deep parenthetical remarks nest; a parenthesis right after a letter or symbol is notation
    ('Intel(R)', 'E(1-(1-k/E)^T)') and does not count."""
    stack: list[bool] = []
    deepest = 0
    for i, char in enumerate(text):
        if char == "(":
            stack.append(i == 0 or text[i - 1].isspace())
            deepest = max(deepest, sum(stack))
        elif char == ")" and stack:
            stack.pop()
    return deepest


@pytest.mark.parametrize("path", sorted(SAMPLES.glob("*.json")), ids=lambda p: p.name)
def test_no_sentence_on_a_result_page_nests_parentheses_three_deep(path: Path) -> None:
    soup = page(load(path))
    for element in soup.find_all(["li", "p", "td", "dd", "figcaption", "h3"]):
        assert prose_paren_depth(element.get_text(" ")) < 3, element.get_text(" ")
def test_passes_show_what_was_measured_and_what_the_engine_adds() -> None:
    """Issue 14: on a measured machine the page says, per pass, which measurement the hardware side rests on and
    what the engine adds to it."""
    import dataclasses

    from dgprofile.app.predictor import predict_for_machine

    measured = factory.measured_h100_result()
    predictions = predict_for_machine(measured.machine, measured.limits, measured.passes)
    soup = page(dataclasses.replace(measured, predictions=predictions))
    block = next(b for b in soup.find("section", id="passes").find_all("div", class_="table-block")
                 if "what vllm adds" in b.find("h3").get_text())
    table = block.find("table")
    rows = {" ".join(r.find_all("td")[0].get_text().split()): [" ".join(td.get_text().split())
                                                              for td in r.find_all("td")]
            for r in table.find("tbody").find_all("tr")}
    denoise = rows["DiffusionGemma: DG denoise pass"]
    assert denoise[3].startswith("measured here: dg-denoise bf16 at concurrency 1")
    assert denoise[6].startswith("+")  # the released vLLM's per-step overhead
    step = rows["Gemma 4: AR decode step"]
    assert step[5].startswith("+")  # vLLM's AR step is its floor
    assert "setup: cuda-graphs" in section_text(soup, "verdict")


def test_transfer_validation_is_listed_with_the_calibration() -> None:
    import dataclasses

    from dgprofile.app.predictor import predict_for_spec
    from dgprofile.specs.hardware import spec_by_id

    measured = factory.measured_h100_result()
    soup = page(dataclasses.replace(measured, predictions=predict_for_spec(spec_by_id("h100-sxm"))))
    table = soup.find("table", id="transfer-table")
    assert table is not None and "leave-one-out" in table.find_parent("div", class_="table-block").find("h3").get_text()
    assert len(table.find("tbody").find_all("tr")) > 20


def test_verify_commands_follow_the_setup_knobs() -> None:
    import dataclasses

    scenario = dataclasses.replace(factory.prediction().scenario, execution_mode="eager", gpus=2)
    commands = verify_commands(scenario)
    assert commands.count("--enforce-eager --tensor-parallel-size 2") == 2  # both models, same setup
