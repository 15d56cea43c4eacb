"""Re-derive the predictions of the result files in samples/ with the current model, from what each file recorded.

The measured files keep their machine, limits and passes; the predicted ones their datasheet entry. Each file's
predictions are worked out again with the options of the command it records (`check` or `predict`), and each
measured pass's floors at the file's limits, so the demo files show what this version of dgprofile says about
those measurements (the modelled passes keep what the run derived). Run it after changing the model, the floors,
the verdict rules or the wording of reasons and advice:

    python scripts/repredict_samples.py [--samples samples]
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
from pathlib import Path
from typing import Any

from dgprofile.app.predictor import predict_for_machine, predict_for_spec
from dgprofile.cli.check import check
from dgprofile.cli.predict import predict
from dgprofile.cli.scenario_options import predict_options
from dgprofile.model.floors import with_floors
from dgprofile.records.limits import Limits
from dgprofile.records.machine import Machine
from dgprofile.records.multi_gpu import MultiGpuRun
from dgprofile.records.passes import PassTimes
from dgprofile.records.predictions import Predictions
from dgprofile.records.results import SCHEMA_VERSION, ResultFile, dump, load
from dgprofile.specs.hardware import spec_by_id
from dgprofile.specs.model_config import load_model_config

# Every scenario option `check` and `predict` share (workload, precision, setup knobs, ...), by predict_options' names.
SCENARIO_OPTIONS = tuple(inspect.signature(predict_options).parameters)


def _recorded_options(result: ResultFile) -> dict[str, Any]:
    """The options of the command the file records, as Click parses them."""
    _, name, *args = result.run.command
    command = {"check": check, "predict": predict}[name]
    with command.make_context(name, list(args), resilient_parsing=True) as ctx:
        return dict(ctx.params)


def repredicted(result: ResultFile) -> Predictions:
    """The file's predictions, worked out again from what it recorded."""
    params = _recorded_options(result)
    if isinstance(result.multi_gpu, MultiGpuRun):  # `check --gpus N|all` splits the model over the GPUs it measured
        params["gpus"] = len(result.multi_gpu.gpu_indices)
    options = predict_options(**{name: params[name] for name in SCENARIO_OPTIONS})
    if isinstance(result.machine, Machine):  # `check`, or `predict --from-result` (which copies the machine)
        return predict_for_machine(result.machine, result.limits, result.passes, options=options,
                                   multi_gpu=result.multi_gpu)
    return predict_for_spec(spec_by_id(params["hardware_id"]), options=options)


def refloored(result: ResultFile) -> PassTimes | None:
    """The file's passes with each measured one's floors worked out again at the file's limits; None without
    measured passes and limits."""
    if not isinstance(result.passes, PassTimes) or not isinstance(result.limits, Limits):
        return None
    config = load_model_config(result.passes.model_id)
    return dataclasses.replace(result.passes, passes=tuple(
        with_floors(config, result.limits, m) if m.measured else m for m in result.passes.passes))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=Path, default=Path(__file__).resolve().parents[1] / "samples")
    args = parser.parse_args()
    for path in sorted(args.samples.glob("*.json")):
        result = load(path)
        passes = refloored(result)
        if passes is not None:
            result = dataclasses.replace(result, passes=passes)
        dump(dataclasses.replace(result, schema_version=SCHEMA_VERSION, predictions=repredicted(result)), path)
        print(f"re-predicted {path}")


if __name__ == "__main__":
    main()
