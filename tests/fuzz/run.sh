#!/bin/sh
# Run every fuzz target of BUILD/fuzz for SECONDS seconds, one after the
# other, on the seeds gen_seeds makes (plus tests/fuzz/seeds/NAME when it
# exists); new inputs accumulate in BUILD/fuzz/corpus/NAME, crashing ones
# go to BUILD/fuzz/crashes/. One line per target; exit 1 if any crashed.
# Usage: tests/fuzz/run.sh BUILD SECONDS
set -u
build=${1:-build-fuzz}
secs=${2:-10}
dir=$build/fuzz
# one thread: the targets are single-threaded and the machine is shared
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
rm -rf "$dir/seeds"
"$dir/gen_seeds" "$dir/seeds" || exit 1
mkdir -p "$dir/crashes"
status=0
for t in "$dir"/fuzz_*; do
    name=${t##*/fuzz_}
    mkdir -p "$dir/corpus/$name"
    extra=
    [ -d "tests/fuzz/seeds/$name" ] && extra="tests/fuzz/seeds/$name"
    log=$dir/$name.log
    # shellcheck disable=SC2086
    if "$t" -max_total_time="$secs" -print_final_stats=1 -close_fd_mask=3 -timeout=20 \
        -rss_limit_mb=2048 -artifact_prefix="$dir/crashes/$name-" \
        "$dir/corpus/$name" "$dir/seeds/$name" $extra >"$log" 2>&1; then
        verdict=ok
    else
        verdict="CRASHED (see $log)"
        status=1
    fi
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    units=$(ls "$dir/corpus/$name" | wc -l)
    echo "fuzz_$name: ${secs} s, ${execs:-?} executions, corpus $units inputs: $verdict"
    [ "$verdict" = ok ] || grep -E "ERROR|SUMMARY|fuzz property" "$log" | head -5
done
exit $status
