"""Where the third-party captures and scanner lists live: read in place, never copied.

They sit in ``shared/data`` beside the repository checkout, or wherever
``DARKVEC_SHARED_DATA`` points. Tests that need them skip when absent.
"""

import os
from pathlib import Path

SHARED_DATA = Path(os.environ.get("DARKVEC_SHARED_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")
REAL_DATA = SHARED_DATA / "real"
LABEL_DATA = SHARED_DATA / "labels"
