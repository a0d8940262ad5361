"""pyActigraphy's sample recordings (GPL-3: fetched from PyPI at test time, never committed)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

PYACT = "pyActigraphy==1.2.2"


@pytest.fixture(scope="session")
def pyact_data(tmp_path_factory) -> Path:
    """The folder of pyActigraphy 1.2.2's ``tests/data`` files (AWD, AGD, MTN, Actiware CSV, ActTrust TXT)."""
    d = tmp_path_factory.mktemp("pyactigraphy")
    try:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", PYACT, "-d", str(d)], check=True,
                       capture_output=True, timeout=120)
        (wheel,) = d.glob("pyActigraphy-1.2.2-*.whl")
        with zipfile.ZipFile(wheel) as z:
            members = [m for m in z.namelist() if m.startswith("pyActigraphy/tests/data/")]
            z.extractall(d, members)
    except (subprocess.SubprocessError, OSError, ValueError, zipfile.BadZipFile) as e:
        pytest.skip(f"{PYACT} (GPL-3 sample recordings) could not be fetched from PyPI: {e}")
    return d / "pyActigraphy" / "tests" / "data"
