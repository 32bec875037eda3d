"""Build hook for the optional compiled decision core; everything else is in pyproject.toml.

By default the package is pure Python. With `AUTOSCALER_COMPILE=1`, a wheel build compiles the
decision core's modules with mypyc (same source, same decisions: tests/runtime/
test_runtime_packaging_docker.py runs the golden decision streams against such a build), which
makes a decision about 1.6 times faster (benchmarks/bench_core.py prints which core it timed):

    python3 -m venv .build-venv
    .build-venv/bin/pip install mypy 'setuptools>=77'          # and a C compiler
    AUTOSCALER_COMPILE=1 .build-venv/bin/pip wheel --no-build-isolation --no-deps -w dist .

The Dockerfile builds its image this way. An editable install cannot be compiled: the
extension modules would sit beside the sources and shadow every later edit.
"""

from __future__ import annotations

import os
import sys

from setuptools import setup

# Modules that stay interpreted: the package's entry point, and the modules whose classes are
# built as drafts (drafts.py assigns `__class__`, which mypyc's native classes do not allow).
INTERPRETED = frozenset(
    {"__init__", "drafts", "types", "state", "proposal", "profile", "objective_memory"}
)
CORE = os.path.join("autoscaler", "core")


def compiled_modules() -> list[str]:
    """Every module of autoscaler/core that is not INTERPRETED, as paths mypyc takes."""
    names = sorted(name[:-3] for name in os.listdir(CORE) if name.endswith(".py"))
    return [os.path.join(CORE, f"{name}.py") for name in names if name not in INTERPRETED]


def ext_modules() -> list:
    setting = os.environ.get("AUTOSCALER_COMPILE", "")
    if setting not in ("", "0", "1"):
        sys.exit(f"AUTOSCALER_COMPILE={setting!r}: expected 1 (compile the core) or 0 (do not)")
    if setting != "1":
        return []
    if "editable_wheel" in sys.argv:
        sys.exit(
            "AUTOSCALER_COMPILE=1: an editable install cannot be compiled (the built modules "
            "would shadow the sources); build a wheel instead (see setup.py)"
        )
    try:
        from mypyc.build import mypycify  # only needed for this build
    except ImportError:
        sys.exit(
            "AUTOSCALER_COMPILE=1 needs mypy (mypyc) and setuptools>=77 in the build "
            "environment, and --no-build-isolation (see setup.py)"
        )

    # Errors in the modules the core imports (the daemon's, typed against dev-only stubs) are
    # not the build's business: `mypy` in the test command checks the whole package.
    options = ["--follow-imports=silent"]
    return mypycify([*options, *compiled_modules()], opt_level="3", group_name="autoscaler_core")


if __name__ == "__main__":  # as setuptools runs it; tests import INTERPRETED
    setup(ext_modules=ext_modules())
