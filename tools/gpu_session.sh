#!/usr/bin/env bash
# One prepared run on a lent GPU machine (no network, its own torch): the device tests,
# the GPU figures, then the whole suite on CUDA, most telling first, each under its own
# time limit, 580 s in all (the device tool's limit per command is 600 s). Output goes to
# $OUT (default: gpu-session/). Usage: tools/gpu_session.sh
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-gpu-session}
py=${PYTHON:-python3}  # the machine's own Python, with its torch
mkdir -p "$out"
export PYTHONPATH=src HANDGRAD_TEST_DEVICE=cuda
step() {  # step NAME SECONDS COMMAND...: run it, keep its output and exit code
    local name=$1 seconds=$2
    shift 2
    timeout "$seconds" "$@" >"$out/$name.txt" 2>&1
    echo "$name: exit $?" | tee -a "$out/summary.txt"
}
{ nvidia-smi -L; "$py" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"; } \
    >"$out/machine.txt" 2>&1
# The whole suite on 8 workers where pytest-xdist is installed.
workers=$("$py" -c "import xdist" 2>/dev/null && echo "-n 8 --dist loadscope")
step devices 120 "$py" -m pytest -q -p no:cacheprovider tests/test_devices.py tests/test_check_devices.py \
    tests/test_linear_mse.py::test_torch_compile_fullgraph_value_and_gradients \
    tests/test_check_cli.py::test_device_and_compute_on_say_where_the_gradients_were_computed
step figures 180 "$py" -m benchmarks.gpu
# shellcheck disable=SC2086  # $workers is empty or several words
step suite 280 "$py" -m pytest -q -p no:cacheprovider $workers
tail -n 3 "$out"/*.txt
