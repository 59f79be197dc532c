#!/usr/bin/env bash
# Run the shared client-overhead benchmark with polyrelay's Router as the "ours" target.
#
#   bash bench/run.sh            # full run (~6-8 min), tables in bench/results/<stamp>.txt, data in .json
#   bash bench/run.sh --quick    # smoke test; any other run.py flag is passed through (e.g. --scenarios latency)
#
# Needs the harness (BENCH_DIR, default: ../shared/bench next to this repository) and its venv (BENCH_VENV,
# default /tmp/bench-venv) with polyrelay installed into it:
#   bash "$BENCH_DIR/setup_venv.sh" /tmp/bench-venv && /tmp/bench-venv/bin/pip install -e .
# LiteLLM targets are added when the venv has litellm.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$HERE")"
BENCH_DIR="${BENCH_DIR:-$REPO/../shared/bench}"
BENCH_DIR="$(cd "$BENCH_DIR" && pwd)"
PY="${BENCH_VENV:-/tmp/bench-venv}/bin/python"
ADAPTER="$HERE/polyrelay_adapter.py"

"$PY" -c "import polyrelay" 2>/dev/null || {
    echo "polyrelay is not installed in $PY: run $(dirname "$PY")/pip install -e $REPO" >&2
    exit 2
}
TARGETS="raw,raw_control,ours"
if "$PY" -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('litellm') is None)"; then
    TARGETS="$TARGETS,litellm_acompletion,litellm_router"
fi

mkdir -p "$HERE/results"
STAMP="$(date -u +%Y%m%d-%H%M%S)"
case " $* " in *" --quick "*) STAMP="$STAMP-quick" ;; esac
OUT="$HERE/results/polyrelay-$STAMP"
"$PY" "$BENCH_DIR/run.py" --targets "$TARGETS" --ours-adapter "$ADAPTER" --out "$OUT.json" "$@" | tee "$OUT.txt"
echo "results: $OUT.txt (tables) and $OUT.json (data)" >&2
