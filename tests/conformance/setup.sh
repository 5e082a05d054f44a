#!/usr/bin/env bash
# Creates the conformance tier's virtualenvs (gitignored .conformance/ at the repo root, or
# $CONFORMANCE_HOME) from tests/conformance/requirements-*.txt. Idempotent: a venv whose
# requirements file has not changed since it was built is kept (a stamp holds the file's hash).
# Heavy packages never enter the program's own venv or requirements.
set -euo pipefail
cd "$(dirname "$0")/../.."
HERE=tests/conformance
HOME_DIR=${CONFORMANCE_HOME:-$PWD/.conformance}
mkdir -p "$HOME_DIR"
# The CPU torch this kind of machine serves to pip locally; the CUDA builds are gigabytes and
# a parser needs none of them. A constraint makes pip fail rather than fetch a CUDA torch.
TORCH=torch==2.13.0
printf '%s\n' "$TORCH" > "$HOME_DIR/torch-constraint.txt"
PIP_FLAGS=(--quiet --disable-pip-version-check --progress-bar off)

stamp_of() { sha256sum "$HERE/requirements-$1.txt" "$HERE/setup.sh" "$HERE/runtime_deps.py" | sha256sum | cut -c1-16; }
fresh() { [[ -f "$HOME_DIR/$1/.stamp" && "$(cat "$HOME_DIR/$1/.stamp")" == "$(stamp_of "$1")" ]]; }
pin() { grep -E "^$2(\[[^]]*\])?==" "$HERE/requirements-$1.txt" | head -1; }

new_venv() {
  rm -rf "${HOME_DIR:?}/$1"
  python3 -m venv "$HOME_DIR/$1"
  "$HOME_DIR/$1/bin/pip" install "${PIP_FLAGS[@]}" "$TORCH"
}

# A vLLM release on CPU torch: the wheel without its dependencies, then the dependencies it
# declares minus the GPU-only ones (runtime_deps.py), with torch held at the CPU build.
install_vllm_nodeps() {
  local venv=$1 spec=$2
  "$venv/bin/pip" install "${PIP_FLAGS[@]}" --no-deps "$spec"
  "$venv/bin/python" "$HERE/runtime_deps.py" vllm > "$venv/vllm-deps.txt"
  "$venv/bin/pip" install "${PIP_FLAGS[@]}" -c "$HOME_DIR/torch-constraint.txt" -r "$venv/vllm-deps.txt"
}

build_vllm() {
  new_venv vllm
  install_vllm_nodeps "$HOME_DIR/vllm" "$(pin vllm vllm)"
}

build_ray() {
  new_venv ray
  local v="$HOME_DIR/ray"
  "$v/bin/pip" install "${PIP_FLAGS[@]}" -c "$HOME_DIR/torch-constraint.txt" "$(pin ray ray)"
  # ray[llm]'s own requirements except vLLM (installed next, as the image ships it).
  "$v/bin/python" "$HERE/runtime_deps.py" ray llm serve > "$v/ray-llm-deps.txt"
  "$v/bin/pip" install "${PIP_FLAGS[@]}" -c "$HOME_DIR/torch-constraint.txt" -r "$v/ray-llm-deps.txt"
  install_vllm_nodeps "$v" "$(pin ray vllm)"
}

build_openwebui() {
  new_venv openwebui
  "$HOME_DIR/openwebui/bin/pip" install "${PIP_FLAGS[@]}" -c "$HOME_DIR/torch-constraint.txt" \
    -r "$HERE/requirements-openwebui.txt"
}

for name in ${CONFORMANCE_VENVS:-vllm ray openwebui}; do
  if fresh "$name"; then
    echo "conformance: $name venv up to date"
    continue
  fi
  start=$SECONDS
  echo "conformance: building $name venv"
  "build_$name"
  stamp_of "$name" > "$HOME_DIR/$name/.stamp"
  echo "conformance: $name venv built in $((SECONDS - start)) s"
done

# The browser the UI test drives: Debian's build (Playwright's own download cannot work here).
if [[ ! -x /usr/bin/chromium ]]; then
  if [[ $(id -u) -eq 0 ]]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-liberation >/dev/null
  else
    echo "conformance: /usr/bin/chromium missing; install Debian's chromium and fonts-liberation" >&2
  fi
fi
