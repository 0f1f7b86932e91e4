"""The repository's copy of the shared vectors must not drift from the originals."""

from pathlib import Path

import pytest
from login_vectors import VECTORS_DIR

SHARED = Path(__file__).resolve().parents[3] / "shared" / "vectors"


@pytest.mark.parametrize("filename", ["crypt.json", "login_transcript.json"])
def test_copy_matches_the_shared_vectors(filename):
    original = SHARED / filename
    if not original.exists():
        pytest.skip(f"{original} is not beside this clone; the copy is used as it is")
    assert (VECTORS_DIR / filename).read_bytes() == original.read_bytes()
