#!/usr/bin/env bash
# The README's test command: sets up what is missing, then fails fast on the static
# checks (import layering, ruff lint + format, mypy: strict for viewer.core and
# viewer.render) before it runs the whole test suite (GUI tests get an Xvfb server from
# pytest-xvfb; with CI=true a GUI test that would skip fails instead, and every test is
# leak-checked: see tests/conftest.py). Extra arguments go to pytest.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/.ci/bootstrap.sh"
cd "$root"
export VTK_SMP_BACKEND_IN_USE="${VTK_SMP_BACKEND_IN_USE:-STDThread}"
echo "[test] import layering (import-linter)"
.venv/bin/lint-imports
echo "[test] ruff check (E, F, W, B, UP, I; pyproject.toml [tool.ruff])"
.venv/bin/ruff check viewer tests benchmarks
echo "[test] ruff format --check"
.venv/bin/ruff format --check viewer tests benchmarks
echo "[test] mypy (pyproject.toml [tool.mypy]: strict for viewer.core and viewer.render)"
.venv/bin/mypy
echo "[test] pytest (--strict-markers; CI=${CI:-unset})"
exec .venv/bin/python -m pytest "$@"
