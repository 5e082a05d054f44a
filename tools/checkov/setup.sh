#!/usr/bin/env bash
# checkov in its own virtualenv, outside the repository and never in the program's
# requirements: ${CHECKOV_VENV:-~/.cache/llm-serving/checkov}. Prints the checkov path.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${CHECKOV_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/llm-serving/checkov}"
if [ ! -x "$venv/bin/checkov" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --upgrade pip
  "$venv/bin/pip" install --quiet -r "$here/requirements.txt"
fi
echo "$venv/bin/checkov"
