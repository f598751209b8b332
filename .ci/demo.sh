#!/usr/bin/env bash
# The README's start command: sets up what is missing, then opens the application on
# the built-in lower-leg CTA phantom (or on the paths/options given).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/.ci/bootstrap.sh"
cd "$root"
export VTK_SMP_BACKEND_IN_USE="${VTK_SMP_BACKEND_IN_USE:-STDThread}"
if [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ]; then
  echo "[demo] no display found: running on a virtual X server (xvfb-run); nothing will be visible."
  exec xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/vessel-viewer "$@"
fi
exec .venv/bin/vessel-viewer "$@"
