#!/usr/bin/env bash
# Install everything citywatch needs on a fresh Debian/Ubuntu machine (root or sudo):
# Debian packages (sample media, fonts), a Python 3.11 virtualenv in .venv with the
# pinned dependencies (one pip command), and the offline sample photos.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
need_apt=0
[ -f /usr/share/doc/opencv-doc/examples/data/vtest.avi ] || need_apt=1
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf ] || need_apt=1
# Debian's chromium drives the browser tests (Playwright's own download cannot work offline).
command -v chromium >/dev/null || need_apt=1
# Debian's PostgreSQL: `citywatch up --postgres` and the Prefect-on-PostgreSQL test run it.
ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || need_apt=1
if [ "$need_apt" = 1 ] && command -v apt-get >/dev/null; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    opencv-doc fonts-dejavu-core chromium postgresql >/dev/null
fi

PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null || PY=python3
"$PY" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' \
  || { echo "citywatch needs Python 3.11 (found $("$PY" --version))" >&2; exit 1; }
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# One pip command for everything (moto otherwise upgrades botocore past aiobotocore).
.venv/bin/python -m pip install -q -e '.[dev]'
# insightface (optional backend) without its deps: they would pull OpenCV 5.
.venv/bin/python -m pip install -q --no-deps insightface==2.1
.venv/bin/python -c 'from citywatch.sample.media import fetch_media; fetch_media()'
echo "citywatch installed in .venv"
