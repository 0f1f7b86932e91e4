"""The repository's copy of the shared vectors must not drift from the originals.

Collected only where the originals are beside the repository (see ``conftest.py``).
"""

import pytest
from login_vectors import SHARED_VECTORS_DIR, VECTORS_DIR


@pytest.mark.parametrize("filename", ["crypt.json", "login_transcript.json"])
def test_copy_matches_the_shared_vectors(filename):
    original = SHARED_VECTORS_DIR / filename
    assert (VECTORS_DIR / filename).read_bytes() == original.read_bytes()
