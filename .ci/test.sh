#!/usr/bin/env bash
# The README's test command: sets up what is missing, checks the import layering,
# then runs the whole test suite (GUI tests get an Xvfb server from pytest-xvfb).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/.ci/bootstrap.sh"
cd "$root"
export VTK_SMP_BACKEND_IN_USE="${VTK_SMP_BACKEND_IN_USE:-STDThread}"
echo "[test] import layering (import-linter)"
.venv/bin/lint-imports
echo "[test] pytest"
exec .venv/bin/python -m pytest "$@"
