# Sourced by the scripts run on the GPU machine (from the repository root): this tree on PYTHONPATH, and
# the wheels carried in .whl/ (wasmtime) installed to /tmp/site where the image lacks them.
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if ! python3 -c "import wasmtime" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl || return 1
  export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi
