"""Regenerate dgprofile/schema/result.schema.json from the result dataclasses."""

import json
from pathlib import Path

from dgprofile.records.results import result_schema

target = Path(__file__).resolve().parents[1] / "dgprofile" / "records" / "schema" / "result.schema.json"
target.write_text(json.dumps(result_schema(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
print(f"wrote {target}")
