#!/usr/bin/env bash
# Runs every fuzz target (or the ones named) for MINUTES minutes EACH, then prints per target
# the minutes run, executions, executions per second and findings (crash, timeout and
# out-of-memory inputs libFuzzer saved).
#
#   fuzz/run.sh MINUTES [TARGET...]
#
# Works on stable Rust: the targets are built with `cargo fuzz build --sanitizer none`
# (`cargo install cargo-fuzz` once). Environment:
#   FUZZ_TARGET_DIR  where to build (default: fuzz/target)
#   FUZZ_WORK        working corpora, findings and logs (default: $FUZZ_TARGET_DIR/work);
#                    the seeds in fuzz/corpus/<target>/ are read, never written
#   FUZZ_JOBS        cargo build jobs (default: cargo's)
# An input that runs longer than 10 s counts as a hang (a finding), one that needs more than
# 2 GiB as out of memory. Exit status: 0 when no target found anything, 1 otherwise, 2 for
# usage or build errors.
set -uo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
minutes="${1:-}"
if ! [[ "$minutes" =~ ^[0-9]+([.][0-9]+)?$ ]]; then
  echo "usage: fuzz/run.sh MINUTES [TARGET...]   (MINUTES per target)" >&2
  exit 2
fi
shift
seconds=$(awk -v m="$minutes" 'BEGIN { s = int(m * 60); print (s < 1 ? 1 : s) }')

target_dir="${FUZZ_TARGET_DIR:-$here/target}"
work="${FUZZ_WORK:-$target_dir/work}"
cd "$here" || exit 2

if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo fuzz list)
fi

build=(cargo fuzz build --sanitizer none --target-dir "$target_dir")
[ -n "${FUZZ_JOBS:-}" ] && build+=(--jobs "$FUZZ_JOBS")
echo "== building ${targets[*]}"
if [ "$#" -eq 0 ]; then
  "${build[@]}" || exit 2
else
  for target in "${targets[@]}"; do
    "${build[@]}" "$target" || exit 2
  done
fi

bin_dir="$target_dir/$(rustc -vV | sed -n 's/^host: //p')/release"
summary=()
failed=0
for target in "${targets[@]}"; do
  corpus="$work/corpus/$target"
  findings="$work/findings/$target"
  log="$work/logs/$target.log"
  mkdir -p "$corpus" "$findings" "$(dirname "$log")" "$here/corpus/$target"
  before=$(find "$findings" -type f | wc -l)
  echo "== $target: $minutes min (log: $log)"
  start=$(date +%s)
  "$bin_dir/$target" "$corpus" "$here/corpus/$target" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$findings/" >"$log" 2>&1
  status=$?
  elapsed=$(( $(date +%s) - start ))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
  found=$(( $(find "$findings" -type f | wc -l) - before ))
  if [ "$status" -ne 0 ] && [ "$found" -eq 0 ]; then
    found=1  # libFuzzer stopped on a problem it could not save an input for
  fi
  [ "$found" -gt 0 ] && failed=1
  summary+=("$(printf '%-16s %8s %12s %8s %9s' "$target" \
    "$(awk -v s="$elapsed" 'BEGIN { printf "%.1f", s / 60 }')" "${execs:-?}" "${rate:-?}" "$found")")
  if [ "$found" -gt 0 ]; then
    echo "   findings in $findings/ (reproduce: $bin_dir/$target <file>)"
    grep -m 3 -E '^(==[0-9]+== ERROR|thread .* panicked|SUMMARY)' "$log" | sed 's/^/   /'
  fi
done

echo
printf '%-16s %8s %12s %8s %9s\n' target minutes executions exec/s findings
printf '%s\n' "${summary[@]}"
exit "$failed"
