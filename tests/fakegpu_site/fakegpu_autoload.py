"""The fakegpu device in every Python process that the device tests start.

conftest.py puts this folder first on PYTHONPATH under HANDGRAD_TEST_DEVICE=fakegpu. Its
entry point (the ``torch.backends`` group, PyTorch's own way to load a device backend)
registers fakegpu as ``import torch`` ends, so that a subprocess (a CLI run, the GPU
figures script) has the device its parent tests, and one that never imports torch pays
nothing. HANDGRAD_FAKEGPU=0 leaves it out: a process that plays a machine without a GPU.
"""

import os
import sys
from pathlib import Path


def register() -> None:
    if os.environ.get("HANDGRAD_FAKEGPU") == "0":
        return
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import fakegpu

    fakegpu.register()
