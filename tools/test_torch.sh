#!/usr/bin/env bash
# make test on another PyTorch release, in an environment of its own (.venv/torch-RELEASE):
# how a release is shown to pass before pyproject.toml declares it (README, "Versions").
# Every other requirement keeps its pin in constraints.txt. pyproject.toml's torch range
# would refuse a release it does not declare yet, so the project goes in without its
# requirements, and they are installed here by name.
# Usage: tools/test_torch.sh RELEASE   (or: make test-torch TORCH=RELEASE)
set -euo pipefail
cd "$(dirname "$0")/.."
release=${1:-}
if [[ ! $release =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
    echo "usage: tools/test_torch.sh RELEASE, a PyTorch release such as 2.14.1" >&2
    exit 2
fi
venv=.venv/torch-$release
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
grep -v '^torch==' constraints.txt >"$venv/constraints.txt"
# pyproject.toml's requirements and its dev extra, less torch.
requirements=$("$venv/bin/python" - <<'EOF'
import re
import tomllib

project = tomllib.load(open("pyproject.toml", "rb"))["project"]
wanted = project["dependencies"] + project["optional-dependencies"]["dev"]
print(" ".join(r for r in wanted if re.split(r"[^A-Za-z0-9_.-]", r)[0] != "torch"))
EOF
)
# shellcheck disable=SC2086  # one word a requirement
"$venv/bin/pip" install --quiet --disable-pip-version-check -c "$venv/constraints.txt" \
    "torch==$release" $requirements
"$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps -e .
touch "$venv/.installed"  # make's stamp: installed, so make test installs nothing more
make test VENV="$venv"
