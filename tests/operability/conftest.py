"""Shared by the operability tests: the demo game's setup, for the tests that run it."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "demo"))
