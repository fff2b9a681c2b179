#!/usr/bin/env bash
# Instructions per frame of the ingest scenario, counted by callgrind: a
# deterministic measure, unlike time on a shared machine.
#
# Builds the fixed feed (20 symbols, 20,000 transactions) once into
# $RAVEN_FEED (default /tmp/raven-ingest-feed.msgpack), then counts a run that
# only loads it and a run that loads it and runs `Ingest(feed).run(frames)`
# (src/raven/bench/ingest.py); prints (run - load) / frames. Keeps the
# callgrind output of the run in $OUT (default /tmp/raven-ingest.callgrind)
# for callgrind_annotate.
#
# Usage: scripts/ingest-instructions.sh [digest | TYPE]
#   digest: also print the replay fingerprint (same digest = same behaviour).
#   TYPE: count only that stream type's frames (aggTrade, bookTicker,
#         depth@100ms, kline_1m, markPrice@1s): the cost per frame of one kind.
set -euo pipefail
cd "$(dirname "$0")/.."
# A fixed string hash seed: dict layouts, and so the counts, repeat exactly.
export PYTHONHASHSEED="${PYTHONHASHSEED:-0}"
PY=.venv/bin/python
FEED="${RAVEN_FEED:-/tmp/raven-ingest-feed.msgpack}"
OUT="${OUT:-/tmp/raven-ingest.callgrind}"
HELPER=scripts/ingest_instructions.py
[ -s "$FEED" ] || $PY $HELPER dump "$FEED"
count() {  # total instructions (Ir) of one helper mode under callgrind
    local out="$1"; shift
    valgrind --tool=callgrind --callgrind-out-file="$out" $PY $HELPER "$@" >/dev/null 2>"$out.log"
    grep -m1 '^summary:' "$out" | awk '{print $2}'
}
ONLY=""
[ -n "${1:-}" ] && [ "$1" != digest ] && ONLY="$1"
base=$(count "$OUT.load" load "$FEED" $ONLY)
full=$(count "$OUT" run "$FEED" $ONLY)
frames=$($PY $HELPER run "$FEED" $ONLY | awk '{print $2}')
echo "load only: $base Ir; load + ingest: $full Ir; frames: $frames"
echo "instructions per frame: $(( (full - base) / frames ))"
if [ "${1:-}" = digest ]; then
    echo "digest (views, no views): $($PY $HELPER digest "$FEED")"
fi
