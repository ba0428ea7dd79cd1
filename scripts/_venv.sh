# Sourced by the other scripts: make .venv and install gcx into it, once per change;
# install the web pages' front-end packages (GOV.UK Frontend, axe-core) from npm.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "gcx needs Python 3.11 or later; set PYTHON=/path/to/python3.11" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.gcx-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e ".[${GCX_EXTRAS:-dev}]"
  touch "$stamp"
fi
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  if command -v npm >/dev/null; then
    npm ci --no-audit --no-fund --loglevel=error
  else
    echo "npm is not installed: the web pages will be unstyled (install Node.js and npm)" >&2
  fi
fi
