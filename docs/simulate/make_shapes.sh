#!/usr/bin/env bash
# Traffic of other shapes: generates seeded traces (autoscaler/simulate/shapes.py) into a
# temporary folder, runs llm-slo, llm-chat and every baseline on each, with start-ups of 2, 3
# and 10 minutes, copies tables, summaries and plots to docs/simulate/shapes/ and prints the
# aim table over every trace (run make.sh first for the real traces).
# Run from the repository root: bash docs/simulate/make_shapes.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/autoscaler-simulate-shapes}
SEED=${SEED:-0}
DATA=data/traces
DOCS=docs/simulate/shapes
mkdir -p "$OUT" "$DOCS"
.venv/bin/python -m autoscaler.simulate.shapes --out "$OUT/traces" --seed "$SEED"

run() {
    local name=$1
    shift
    .venv/bin/autoscaler simulate \
        --policy policies/llm-slo.yaml --policy policies/llm-chat.yaml --baseline all \
        --replica-hourly-usd 10 --out "$OUT/$name" "$@" > "$OUT/$name.txt"
    cp "$OUT/$name/table.md" "$DOCS/$name-table.md"
    cp "$OUT/$name/summary.json" "$DOCS/$name-summary.json"
    cp "$OUT/$name/compare.png" "$DOCS/$name-compare.png"
}

for startup in 120 180 600; do
    run "bursty-short-$startup" --trace "$OUT/traces/bursty-short.csv" --provision-seconds $startup
    run "reasoning-long-$startup" --trace "$OUT/traces/reasoning-long.csv" \
        --provision-seconds $startup
done
for startup in 120 600; do
    run "mooncake-1h-$startup" --trace "$DATA/mooncake_conversation_1h.csv" \
        --provision-seconds $startup
done
for startup in 180 600; do
    run "diurnal-14d-$startup" --trace "$OUT/traces/diurnal.csv" \
        --sizes "$DATA/mooncake_conversation_1h.csv" --provision-seconds $startup
done

.venv/bin/python -m autoscaler.simulate.aim --policy llm-slo \
    "Mooncake 1 h=docs/simulate/mooncake-1h-summary.json" \
    "ServeGen 14 d=docs/simulate/servegen-14d-summary.json" \
    "ServeGen 14 d, gaps filled=docs/simulate/servegen-14d-filled-summary.json" \
    "Mooncake 1 h, 2 min start-up=$DOCS/mooncake-1h-120-summary.json" \
    "Mooncake 1 h, 10 min start-up=$DOCS/mooncake-1h-600-summary.json" \
    "bursty-short, 2 min=$DOCS/bursty-short-120-summary.json" \
    "bursty-short, 3 min=$DOCS/bursty-short-180-summary.json" \
    "bursty-short, 10 min=$DOCS/bursty-short-600-summary.json" \
    "reasoning-long, 2 min=$DOCS/reasoning-long-120-summary.json" \
    "reasoning-long, 3 min=$DOCS/reasoning-long-180-summary.json" \
    "reasoning-long, 10 min=$DOCS/reasoning-long-600-summary.json" \
    "diurnal 14 d, 3 min=$DOCS/diurnal-14d-180-summary.json" \
    "diurnal 14 d, 10 min=$DOCS/diurnal-14d-600-summary.json" \
    | tee "$DOCS/aim.md"
