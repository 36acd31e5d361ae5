"""The API process stays small: the heavy libraries load only where they are used.

scipy (WCLS analyses), pyarrow (Parquet exports) and firebase-admin (pushes, in the worker)
add some 160 MiB to a process between them; every API worker would pay for them otherwise.
"""

import subprocess
import sys

HEAVY = ("scipy", "pyarrow", "firebase_admin")


def test_the_api_does_not_import_the_heavy_libraries_at_start() -> None:
    code = f"import sys, app.api.main\nprint(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    ).stdout.strip()
    assert loaded == ""
