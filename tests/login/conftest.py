"""``test_vectors_copy.py`` runs only in a developer's checkout, where ``shared/`` is beside it.

A user's clone has no ``shared/`` folder: there the copy in ``tests/vectors`` is the ground
truth, and a test that could only ever be skipped is not collected at all.
"""

from login_vectors import SHARED_VECTORS_DIR

collect_ignore = [] if SHARED_VECTORS_DIR.is_dir() else ["test_vectors_copy.py"]
