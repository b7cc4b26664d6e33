"""What starting costs: ``mockbankr --help`` and a pytest session with the plugin (issue 10).

* **cli**: the wall time of ``mockbankr --help`` against ``python -c "import starlette,
  uvicorn, click"`` (the libraries a server command cannot do without), both from ``.venv``.
  Target: at most 1.5x.
* **plugin**: the CPU time (user + system) of a pytest session running one trivial test,
  with mockbankr's plugin (installed through the ``pytest11`` entry point) and with
  ``-p no:mockbankr``. Target: at most 1.05x. CPU time, not wall time: a whole pytest
  session on a shared machine waits for the CPU for longer than the 5% being measured.

Each is a fresh process; the two commands alternate for :data:`ROUNDS` rounds after one
warm-up of each (so both find the bytecode cache and the page cache warm), and the figure is
the median over the rounds of the per-round ratio. The A/A figure (the baseline against
itself, one round apart) says how much of a ratio is noise on this machine.
"""

from __future__ import annotations

import itertools
import logging
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.figures import BenchError, Figure, at_most, info

__all__ = ["ROUNDS", "run_cli", "run_plugin"]

ROUNDS = 7
#: Far above any sane start-up; a command that takes longer is broken.
TIMEOUT = 60.0

logger = logging.getLogger("bench")

BIN = Path(sys.executable).parent


def _seconds(command: list[str], cwd: Path | None = None) -> tuple[float, float]:
    """(wall seconds, CPU seconds: user + system) of one run of ``command``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(
        command,
        capture_output=True,
        timeout=TIMEOUT,
        check=False,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
    )
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise BenchError(f"{' '.join(command)} exited {result.returncode}: {result.stderr!r}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def _compare(
    measured: list[str], baseline: list[str], cwd: Path | None = None, *, cpu: bool = False
) -> tuple[float, float, float, float]:
    """(median ratio measured / baseline, A/A ratio, median measured s, median baseline s),
    in wall seconds, or in CPU seconds with ``cpu``."""
    _seconds(measured, cwd), _seconds(baseline, cwd)  # warm-up
    ours: list[float] = []
    theirs: list[float] = []
    for _ in range(ROUNDS):
        ours.append(_seconds(measured, cwd)[1 if cpu else 0])
        theirs.append(_seconds(baseline, cwd)[1 if cpu else 0])
    ratio = statistics.median(o / t for o, t in zip(ours, theirs, strict=True))
    aa = statistics.median(b / a for a, b in itertools.pairwise(theirs))
    return ratio, aa, statistics.median(ours), statistics.median(theirs)


def run_cli() -> list[Figure]:
    mockbankr = BIN / "mockbankr"
    if not mockbankr.exists():
        raise BenchError(f"{mockbankr} is missing: run `make install`")
    ratio, aa, ours, theirs = _compare(
        [str(mockbankr), "--help"],
        [sys.executable, "-c", "import starlette, uvicorn, click"],
    )
    logger.info(
        "cli: mockbankr --help %.0f ms, the imports alone %.0f ms", 1e3 * ours, 1e3 * theirs
    )
    return [
        at_most("mockbankr --help / import starlette, uvicorn, click", ratio, "x", 1.5),
        info("mockbankr --help, median", 1e3 * ours, "ms"),
        info("python -c 'import starlette, uvicorn, click', median", 1e3 * theirs, "ms"),
        info("A/A: the baseline against itself, median", aa, "x"),
    ]


def run_plugin() -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="mockbankr-bench-") as folder:
        cwd = Path(folder)
        (cwd / "test_trivial.py").write_text("def test_trivial():\n    assert True\n")
        pytest = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_trivial.py"]
        without = [*pytest, "-p", "no:mockbankr"]
        ratio, aa, ours, theirs = _compare(pytest, without, cwd, cpu=True)
    logger.info(
        "plugin: pytest with the plugin %.0f ms CPU, without %.0f ms", 1e3 * ours, 1e3 * theirs
    )
    probe = (
        "import time, pytest\nstarted = time.perf_counter()\nimport mockbankr.pytest_plugin\n"
        "print(time.perf_counter() - started)"
    )
    imports = []
    for _ in range(ROUNDS):
        result = subprocess.run(
            [sys.executable, "-c", probe],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=True,
        )
        imports.append(float(result.stdout))
    return [
        at_most("pytest session CPU time, with / without the mockbankr plugin", ratio, "x", 1.05),
        info("pytest session with the plugin, median", 1e3 * ours, "ms CPU"),
        info("pytest session with -p no:mockbankr, median", 1e3 * theirs, "ms CPU"),
        info("importing the plugin after pytest, median", 1e3 * statistics.median(imports), "ms"),
        info("A/A: the baseline against itself, median", aa, "x"),
    ]
