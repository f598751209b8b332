#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian machine: system libraries for Qt (xcb) and
# OpenGL (Mesa), Xvfb for headless GUI tests, a virtual environment in .venv and the
# package installed into it. Safe to run again: each step checks before it acts.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

# Debian packages the Qt xcb platform plugin and VTK's OpenGL/EGL need. Without
# libxcb-icccm4 / libxcb-keysyms1, Qt's xcb plugin aborts with a misleading message
# about xcb-cursor0 (measured, see docs/DESIGN notes).
apt_pkgs=(xvfb xauth libxcb-icccm4 libxcb-keysyms1 libxcb-cursor0 libxkbcommon-x11-0
  libxcb-image0 libxcb-render-util0 libxcb-shape0 libxcb-randr0 libxcb-xkb1 libxcb-xinerama0
  libegl1 libgl1 libgl1-mesa-dri libopengl0 libglx-mesa0 libfontconfig1 libdbus-1-3
  libxrender1 libxi6 libsm6 libice6 fonts-dejavu-core)
missing=()
for p in "${apt_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "[bootstrap] installing system packages: ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo_cmd apt-get update -qq
  $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

py="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "[bootstrap] creating virtual environment .venv"
  "$py" -m venv .venv
fi
# Reinstall only when the project's dependency list changed.
stamp=.venv/.vessel-viewer-stamp
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "[bootstrap] installing the package and its dependencies into .venv"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".[test]"
  echo "$want" > "$stamp"
fi
