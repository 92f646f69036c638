# Sourced by the scripts run on the GPU machine (from the repository root): this tree on PYTHONPATH, and
# the wheels carried in .whl/ (wasmtime, the tests' reference) installed to /tmp/site where the image lacks
# them or has another wasmtime than the one carried.
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
want=$(ls .whl/wasmtime-*.whl 2>/dev/null | sed -n 's|.*/wasmtime-\([^-]*\)-.*|\1|p' | head -1)
have=$(python3 -c "import importlib.metadata as m; print(m.version('wasmtime'))" 2>/dev/null)
if [ -z "$have" ] || { [ -n "$want" ] && [ "$have" != "$want" ]; }; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl || return 1
  export PYTHONPATH="/tmp/site:$PYTHONPATH"
fi
