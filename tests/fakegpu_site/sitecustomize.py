"""The fakegpu device in every Python process that the device tests start.

conftest.py puts this folder first on PYTHONPATH under HANDGRAD_TEST_DEVICE=fakegpu, so
that a subprocess (a CLI run, the GPU figures script) has the device its parent tests.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import fakegpu  # noqa: E402

fakegpu.register()
