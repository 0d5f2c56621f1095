#!/usr/bin/env bash
# Make the two interpreters benchmarks/e2e.py runs its AutoML peers with, each in its own
# venv so that neither peer's pins touch hyperpilot's environment:
#
#     bash benchmarks/make_peer_envs.sh [FOLDER]     # default: benchmarks/
#
# and then paste the two export lines it prints. Versions are pinned so that a rerun of the
# benchmark compares against the same peers.
set -euo pipefail

FOLDER="${1:-$(cd "$(dirname "$0")" && pwd)}"
PYTHON="${PYTHON:-python3}"
FLAML_VERSION=2.8.0
AUTOGLUON_VERSION=1.6.3
# autogluon.tabular 1.6.3 asks for torch>=2.10,<2.14 (its fastai/tabm/mitra extras), so the
# torch the project's own README installs, 2.13.0, fits; installing it first keeps pip from
# choosing a newer wheel.
TORCH_VERSION=2.13.0

mkdir -p "$FOLDER"

"$PYTHON" -m venv "$FOLDER/.venv-flaml"
"$FOLDER/.venv-flaml/bin/pip" install -q "flaml[automl]==$FLAML_VERSION"

"$PYTHON" -m venv "$FOLDER/.venv-autogluon"
"$FOLDER/.venv-autogluon/bin/pip" install -q "torch==$TORCH_VERSION"
"$FOLDER/.venv-autogluon/bin/pip" install -q "autogluon.tabular[all]==$AUTOGLUON_VERSION"

echo "export HYPERPILOT_E2E_FLAML_PYTHON=$FOLDER/.venv-flaml/bin/python"
echo "export HYPERPILOT_E2E_AUTOGLUON_PYTHON=$FOLDER/.venv-autogluon/bin/python"
