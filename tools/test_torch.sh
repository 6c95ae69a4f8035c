#!/usr/bin/env bash
# make test on another PyTorch release, in an environment of its own (.venv/torch-RELEASE):
# how a release is shown to pass before pyproject.toml declares it (README, "Versions").
# Every other requirement keeps its pin in constraints.txt. pyproject.toml's torch range
# would refuse a release it does not declare yet, so the project goes in without its
# requirements, and they are installed here by name.
# Usage: make test-torch TORCH=RELEASE   (or: tools/test_torch.sh RELEASE)
set -euo pipefail
cd "$(dirname "$0")/.."
release=${1:-}
if [ -z "$release" ]; then
    echo "make test-torch: name the release, e.g. make test-torch TORCH=2.14.1" >&2
    exit 2
fi
if [[ ! $release =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
    echo "make test-torch: TORCH=$release is not a PyTorch release number; give all three" \
        "parts, e.g. TORCH=2.14.1 (pip's release list: pip index versions torch)" >&2
    exit 2
fi
venv=.venv/torch-$release
if [ ! -x "$venv/bin/python" ]; then
    echo "make test-torch: making $venv with torch==$release from PyPI (a CUDA build on" \
        "Linux: several GB and minutes to download the first time; it runs on the CPU)"
    python3 -m venv "$venv"
fi
grep -v '^torch==' constraints.txt >"$venv/constraints.txt"
# pyproject.toml's requirements and its dev extra, less torch (tomllib: Python 3.11; before
# it, the same parser as vendored in pip).
requirements=$("$venv/bin/python" - <<'EOF'
import re

try:
    import tomllib
except ModuleNotFoundError:
    from pip._vendor import tomli as tomllib

project = tomllib.load(open("pyproject.toml", "rb"))["project"]
wanted = project["dependencies"] + project["optional-dependencies"]["dev"]
print(" ".join(r for r in wanted if re.split(r"[^A-Za-z0-9_.-]", r)[0] != "torch"))
EOF
)
# shellcheck disable=SC2086  # one word a requirement
if ! "$venv/bin/pip" install --quiet --disable-pip-version-check \
    -c "$venv/constraints.txt" "torch==$release" $requirements; then
    echo "make test-torch: pip could not install torch==$release beside the project's" \
        "pins (its reason is above): a release PyPI lacks for this Python, or one that a" \
        "cap in pip's configuration refuses (pip config list)" >&2
    [ -e "$venv/.installed" ] || rm -rf "$venv"  # nothing half-made is left to mislead
    exit 1
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps -e .
touch "$venv/.installed"  # make's stamp: installed, so make test installs nothing more
make test VENV="$venv"
