#!/bin/bash
# Issue 14: the time of a pip install into an empty directory to the first rendered report (no checkout involved):
# a fresh venv, torch (CPU) and the soar_lite wheel (make wheel), then `soar-lite run ci --only probe` from the
# empty directory with the notebooks and params the wheel ships. Prints each phase's seconds.
#   bash scripts/pip_first_report.sh [dist/soar_lite-*.whl]
set -euo pipefail
WHEEL=$(readlink -f "${1:-$(ls dist/soar_lite-*.whl | head -1)}")
DIR=$(mktemp -d)
cd "$DIR"
t0=$(date +%s)
python3 -m venv venv
venv/bin/pip install -q torch==2.13.0
venv/bin/pip install -q "$WHEEL"
t1=$(date +%s)
venv/bin/soar-lite notebooks nb >/dev/null
OMP_NUM_THREADS=1 venv/bin/soar-lite run ci --only probe
t2=$(date +%s)
ls results/ci/01_probe.html >/dev/null
echo "$(date -u +%Y-%m-%d) empty directory $DIR: pip install $((t1 - t0)) s, first rendered report (results/ci/01_probe.html) $((t2 - t1)) s, total $((t2 - t0)) s"
