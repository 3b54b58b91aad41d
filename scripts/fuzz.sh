#!/usr/bin/env bash
# scripts/fuzz.sh: run libFuzzer harnesses built by `make fuzz-build`, each
# for FUZZ_SECONDS (default 60), starting from the seed corpus in
# fuzz/corpus/NAME.  New inputs go to fuzz/work/NAME (not kept in git); a
# crash leaves fuzz/work/crash-* and makes the script fail.  Prints each
# harness's executions, so a run can be reported.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
seconds=${FUZZ_SECONDS:-60}
status=0
for bin in "$@"; do
	name=${bin##*/fuzz_}
	mkdir -p "fuzz/work/$name"
	log="fuzz/work/$name.log"
	echo "== $bin for ${seconds}s (log: $log)"
	if ! "$bin" -max_total_time="$seconds" -print_final_stats=1 \
		-artifact_prefix="fuzz/work/" -max_len=4096 \
		"fuzz/work/$name" "fuzz/corpus/$name" >"$log" 2>&1; then
		status=1
		grep -E 'ERROR|SUMMARY|Test unit written' "$log" || tail -n 30 "$log"
	fi
	grep -E '^stat::number_of_executed_units|^stat::peak_rss_mb|^#[0-9]+.*DONE' "$log" || true
	echo "corpus: $(find "fuzz/work/$name" -type f | wc -l) inputs"
done
exit $status
