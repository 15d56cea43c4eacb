# Source this on a lent GPU machine (no network): installs the carried wheels and dgprofile itself.
# Usage, from the repository root:  . scripts/device_env.sh
# The lent machines' image has torch, triton, click, jinja2, nvidia-ml-py, psutil and py-cpuinfo but not pygal
# (with importlib_metadata, lazy-importer and zipp) or jsonschema (with jsonschema-specifications, referencing and
# rpds-py): download those as cp312 manylinux wheels into .whl/ and carry it.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || return 1
export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --no-build-isolation -e . || return 1
