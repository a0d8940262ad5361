"""Writes this folder's E4 session: one participant, the first 3 minutes, in E4 connect's exact format.

The synthetic generator needs a full lab protocol (50 min); the dummy keeps
only its first 3 minutes of every signal file (header rows unchanged), which
is what an E4 export cut short looks like. Run from the repository root:
``python tests/sources/dummy_data/empatica_e4/make_dummy.py``.
"""

import shutil
import tempfile
from pathlib import Path

from sensorpipe.demo.synthetic import write_e4_study

KEEP_S = 180

if __name__ == "__main__":
    here = Path(__file__).parent
    with tempfile.TemporaryDirectory() as tmp:
        study = write_e4_study(tmp, n_participants=1, hours=1.0, seed=3)
        shutil.copy(study / "participants.csv", here / "participants.csv")
        for folder in (p for p in study.iterdir() if p.is_dir()):
            (here / folder.name).mkdir(exist_ok=True)
            for f in folder.iterdir():
                lines = f.read_text().splitlines(keepends=True)
                if f.name == "tags.csv":
                    kept = lines[:1]
                else:
                    rate = float(lines[1].split(",")[0])
                    kept = lines[: 2 + int(KEEP_S * rate)]
                (here / folder.name / f.name).write_text("".join(kept))
