"""The AI Hub download builder (tests/fixtures/aihub/build.py), loaded once for every data test.

    from aihub_fixture import fx          # pytest puts tests/data on sys.path for the tests here
    root = fx.copy_fixture(tmp_path / "aihub")
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location("aihub_fixture_build", Path(__file__).parents[1] / "fixtures" / "aihub" / "build.py")
fx = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fx)
