"""``fakegpu``: a second device, on the CPU, for the device tests where there is no GPU.

``HANDGRAD_TEST_DEVICE=fakegpu`` (``make test`` runs the device tests so) puts them on it.
Its tensors live in host memory, and every operator runs as the CPU kernel on aliases of
them (``fakegpu.cpp``), except that an operator given a fakegpu tensor beside a CPU tensor
fails with CUDA's own message (a 0-dim CPU tensor passes as a number to pointwise
operators, as on CUDA). So the code a GPU run takes (``device.type != "cpu"``) runs here,
and a tensor left on the wrong side of the device boundary is caught without a GPU. What
it cannot show: speed, CUDA's kernels and their rounding, pinned memory, streams,
``torch.compile``'s GPU code; ``make gpu-check`` is for those.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import sys
from pathlib import Path

NAME = "fakegpu"
SOURCE = Path(__file__).with_name("fakegpu.cpp")
# ninja is installed into the environment (the dev extra), beside its interpreter.
TOOLS = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])


def missing_tool() -> str | None:
    """What building the extension needs and this machine lacks, or None."""
    compiler = os.environ.get("CXX", "c++")  # what torch's build runs
    if not shutil.which(compiler, path=TOOLS):
        return f"no C++ compiler ({compiler}) on the PATH; install g++, or set CXX"
    if not shutil.which("ninja", path=TOOLS):
        return "no ninja; pip install ninja"
    return None


def register():
    """Build the extension (once: it is kept in the environment) and register the device;
    return it, ``torch.device("fakegpu")``."""
    import torch
    from torch.utils.backend_registration import _setup_privateuseone_for_python_backend
    from torch.utils.cpp_extension import load

    if torch._C._get_privateuse1_backend_name() == NAME:  # here already (fakegpu_autoload.py)
        return torch.device(NAME)
    build = Path(sys.prefix) / "torch_extensions" / NAME
    build.mkdir(parents=True, exist_ok=True)
    os.environ["PATH"] = TOOLS
    # torch's own lock is a file that a build killed half-way leaves behind, and every
    # later build then waits on it for ever. This one is released when its holder dies:
    # under it, any torch lock is such a leftover.
    with open(build / "handgrad.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        (build / "lock").unlink(missing_ok=True)
        load(
            name=f"handgrad_{NAME}",
            sources=[str(SOURCE)],
            build_directory=str(build),
            is_python_module=False,
            extra_cflags=["-O1"],
        )
    _setup_privateuseone_for_python_backend(NAME)
    return torch.device(NAME)


if __name__ == "__main__":  # make test: exit 0 where the device can be built, else say why
    missing = missing_tool()
    if missing:
        print(missing)
    sys.exit(1 if missing else 0)
