#!/usr/bin/env bash
# Reproduces docs/simulate/: llm-slo (objective) and llm-chat (hand-tuned) against every
# baseline on the shared traces; make_shapes.sh does the generated shapes.
# Run from the repository root: bash docs/simulate/make.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA=data/traces
OUT=${OUT:-/tmp/autoscaler-simulate-docs}

.venv/bin/autoscaler simulate \
    --trace "$DATA/mooncake_conversation_1h.csv" \
    --policy policies/llm-slo.yaml --policy policies/llm-chat.yaml --baseline all \
    --replica-hourly-usd 10 --out "$OUT/mooncake-1h"

.venv/bin/autoscaler simulate \
    --trace "$DATA/servegen_language_m_mid_14d_rate10min.csv" \
    --sizes "$DATA/mooncake_conversation_1h.csv" --rate-scale 0.003 \
    --policy policies/llm-slo.yaml --policy policies/llm-chat.yaml --baseline all \
    --replica-hourly-usd 10 --out "$OUT/servegen-14d"

# the same with the 84 rate-0 windows (gaps in collection, per the data README) interpolated
.venv/bin/autoscaler simulate \
    --trace "$DATA/servegen_language_m_mid_14d_rate10min.csv" \
    --sizes "$DATA/mooncake_conversation_1h.csv" --rate-scale 0.003 --fill-gaps \
    --policy policies/llm-slo.yaml --policy policies/llm-chat.yaml --baseline all \
    --replica-hourly-usd 10 --out "$OUT/servegen-14d-filled"

for run in mooncake-1h servegen-14d servegen-14d-filled; do
    cp "$OUT/$run/compare.png" "docs/simulate/$run-compare.png"
    cp "$OUT/$run/llm-chat.png" "docs/simulate/$run-llm-chat.png"
    cp "$OUT/$run/llm-slo.png" "docs/simulate/$run-llm-slo.png"
    cp "$OUT/$run/table.md" "docs/simulate/$run-table.md"
    cp "$OUT/$run/summary.json" "docs/simulate/$run-summary.json"
done
