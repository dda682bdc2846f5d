#!/usr/bin/env bash
# run_all.sh - what `make -C firmware test` runs (from firmware/).
#
# Why it exists: the three parts (unit tests, Arduino glue syntax check,
# real-server integration test) each report "N passed, N failed"; this runs
# them all even when one fails, and ends with the totals on one line. Exit
# status is non-zero if anything failed.
set -u -o pipefail
cd "$(dirname "$0")/.."

total_pass=0
total_fail=0
status=0

# count LOGFILE: add the part's last "N passed, N failed" line to the totals
count() {
    local line
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$1" | tail -n 1)
    if [ -n "$line" ]; then
        total_pass=$((total_pass + $(echo "$line" | cut -d' ' -f1)))
        total_fail=$((total_fail + $(echo "$line" | cut -d' ' -f3)))
    fi
}

echo "== unit tests (portable core, ASan + UBSan)"
if ! build/unit_tests 2>&1 | tee build/unit.log; then status=1; fi
count build/unit.log
grep -qE ' passed, ' build/unit.log || total_fail=$((total_fail + 1)) # crashed before its summary

echo "== Arduino glue against stand-in headers"
if make --no-print-directory glue-check > build/glue.log 2>&1; then
    echo "glue-check: OtaFleet.cpp and the example sketch compile"
    total_pass=$((total_pass + 1))
else
    cat build/glue.log
    echo "glue-check: FAILED"
    total_fail=$((total_fail + 1))
    status=1
fi

echo "== integration: host device against a real otafleet serve"
if ! python3 test/integration.py 2>&1 | tee build/integration.log; then status=1; fi
count build/integration.log
grep -qE ' passed, ' build/integration.log || total_fail=$((total_fail + 1))

echo "== all firmware tests"
echo "${total_pass} passed, ${total_fail} failed"
exit $status
