#!/usr/bin/env bash
# `npm run test:soak`: the fault and soak suite (test/soak/*.soak.ts, issue 11), apart from `npm test`.
# Each file runs in namespaces of its own (test/harness.ts); each case appends one result line, and
# docs/reliability.md is regenerated from them when every file passed.
set -uo pipefail
cd "$(dirname "$0")/.."
results=$(mktemp /tmp/qbh-soak.XXXXXX.jsonl)
start=$(date +%s)
QBH_SOAK_RESULTS=$results npx --no-install tap --disable-coverage --timeout=600 test/soak/*.soak.ts
rc=$?
if [ "$rc" -eq 0 ]; then node scripts/soak-report.mjs "$results" "$(( $(date +%s) - start ))"; fi
rm -f "$results"
exit "$rc"
