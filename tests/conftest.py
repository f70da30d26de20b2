"""Test-session settings: keep the SSEM numerics cache out of the user's home folder."""

from __future__ import annotations

import os
import tempfile

# theory/ssem.py caches its generated numeric code in $COLLAPSEKIT_CACHE; subprocesses inherit it
os.environ.setdefault("COLLAPSEKIT_CACHE", tempfile.mkdtemp(prefix="collapsekit-test-cache-"))
