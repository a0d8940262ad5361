"""How the ``sensorpipe`` program ends (``sensorpipe.cli.run``): a normal exit without the interpreter's teardown.

Each case runs a fresh interpreter: what is checked is what happens after ``main`` returns.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: a program like the console script, with hooks a case sets up through the environment
_PROGRAM = """
import atexit, os, sys, threading, time
from pathlib import Path

marks = Path(os.environ["MARKS"])
def mark(what):
    with open(marks, "a") as fh:
        fh.write(what + "\\n")

if os.environ.get("EARLY_HANDLER"):       # registered before run(): it would run after run()'s handler
    atexit.register(mark, "early handler")

import sensorpipe.cli as cli

class TornDown:
    def __init__(self, path):
        self.path = path

    def __del__(self, open=open):          # runs when the interpreter tears the module down
        with open(self.path, "a") as fh:
            fh.write("torn down\\n")

cli.kept_until_teardown = TornDown(str(marks))
real_main = cli.main

def main(argv=None):
    atexit.register(mark, "handler")       # registered during the command: runs before run()'s handler
    def late():
        time.sleep(0.3)
        mark("thread")
    threading.Thread(target=late).start()  # a non-daemon thread still running when the command returns
    if os.environ.get("BOOM"):
        raise RuntimeError("boom")
    status = real_main(argv)
    print("x" * 200_000)                   # more than a pipe buffer: flushed before the process ends
    return int(os.environ.get("STATUS", status))

cli.main = main
cli.run(sys.argv[1:])
"""


def _program(tmp_path: Path, *args: str, **env: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    marks = tmp_path / "marks.txt"
    marks.write_text("")
    done = subprocess.run([sys.executable, "-c", _PROGRAM, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env={**__import__("os").environ, "MARKS": str(marks), **env})
    return done, marks.read_text().splitlines()


def test_the_program_exits_with_its_status_after_threads_and_handlers_without_tearing_down(tmp_path):
    done, marks = _program(tmp_path, "sources")
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("actigraph_agd") and done.stdout.endswith("x" * 200_000 + "\n")
    assert marks == ["thread", "handler"]            # joined, then the exit handlers; no teardown

    done, marks = _program(tmp_path, "sources", STATUS="3")
    assert done.returncode == 3 and marks == ["thread", "handler"]


def test_argument_errors_and_help_keep_their_status(tmp_path):
    done, marks = _program(tmp_path, "sources", "--no-such-option")
    assert done.returncode == 2 and "unrecognized arguments" in done.stderr
    assert marks == ["thread", "handler"]
    done, _ = _program(tmp_path, "--help")
    assert done.returncode == 0 and done.stdout.startswith("usage: sensorpipe")


def test_an_error_escaping_the_command_or_an_earlier_handler_means_the_usual_exit(tmp_path):
    done, marks = _program(tmp_path, "sources", BOOM="1")
    assert done.returncode == 1 and "RuntimeError: boom" in done.stderr
    assert marks == ["thread", "handler", "torn down"]

    # a handler registered before run() would run after its handler: the process exits as usual, so it runs
    done, marks = _program(tmp_path, "sources", EARLY_HANDLER="1")
    assert done.returncode == 0
    assert marks == ["thread", "handler", "early handler", "torn down"]


def test_python_dash_m_and_the_console_script_both_go_through_run():
    source = (ROOT / "src" / "sensorpipe" / "cli.py").read_text()
    assert source.rstrip().endswith('if __name__ == "__main__":  # pragma: no cover\n    run()')
    assert 'sensorpipe = "sensorpipe.cli:run"' in (ROOT / "pyproject.toml").read_text()
