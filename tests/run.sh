#!/bin/sh
# Run every test binary given, print one summary line, fail if any failed.
# Each binary is a Criterion suite; its own output shows what failed.
pass=0; fail=0; failed=""
for t in "$@"; do
    echo "== $t"
    if "$t" --jobs 2 --timeout 300; then pass=$((pass + 1)); else
        fail=$((fail + 1)); failed="$failed $t"; fi
done
echo "suites: $pass passed, $fail failed"
[ "$fail" -eq 0 ] || { echo "failed suites:$failed"; exit 1; }
