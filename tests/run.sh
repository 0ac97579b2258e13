#!/bin/sh
# Run every test binary given (Criterion suites), then print one closing
# line with the totals, then the failures' own lines again (a CI log is
# often read from its end); fail if any suite failed.
pass=0; fail=0; failed=""; tp=0; tf=0
log=$(mktemp); bad=$(mktemp)
trap 'rm -f "$log" "$bad"' EXIT
for t in "$@"; do
    echo "== $t"
    if "$t" --jobs 2 --timeout 600 >"$log" 2>&1; then
        pass=$((pass + 1))
    else
        fail=$((fail + 1)); failed="$failed $t"
        # Criterion's assertion ([----]), failure and crash lines.
        { echo "-- $t"
          grep -E '^\[(----|FAIL)\]|CRASH|[Tt]imed out|[Ss]ignal' "$log" |
              grep -v 'Synthesis' | tail -40; } >>"$bad"
    fi
    cat "$log"
    # [====] Synthesis: Tested: 7 | Passing: 7 | Failing: 0 | Crashing: 0
    p=$(sed -n 's/.*Synthesis:.*Passing: \([0-9]*\).*/\1/p' "$log" | tail -1)
    f=$(sed -n 's/.*Synthesis:.*Failing: \([0-9]*\).*/\1/p' "$log" | tail -1)
    tp=$((tp + ${p:-0})); tf=$((tf + ${f:-1}))
done
echo "suites: $pass passed, $fail failed${failed:+ ($failed )}"
echo "tests: $tp passed, $tf failed"
if [ -s "$bad" ]; then
    echo "failures:"
    cat "$bad"
fi
[ "$fail" -eq 0 ]
