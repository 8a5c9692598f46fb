#!/usr/bin/env bash
# The "tuned" column of docs/real-data.md: bench/real-data.sh under leave-one-out once per flag set below
# (the defaults first), then per log the flag set whose model scores best on that log's validation cases,
# with its test numbers beside the defaults' (bench/real-data-pick.ts). The test cases take no part in the
# choice. About 5 minutes per flag set at one thread.
# Usage: bash bench/real-data-tuned.sh [../shared/data] [extra dupn train flags for every run, e.g. --threads 1]
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-../shared/data}
shift || true
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
grid=(
  'default|'
  'examples-per-user-256|--examples-per-user 256'
  'lr-0.01|--lr 0.01'
  'dropout-0.2|--dropout 0.2'
  'embedding-lr-0.1|--embedding-lr 0.1'
)
files=()
for g in "${grid[@]}"; do
  name=${g%%|*}
  read -r -a flags <<<"${g#*|}"
  echo "flag set $name: ${flags[*]:-(none)}" >&2
  bash bench/real-data.sh "$data" --split leave-one-out "$@" "${flags[@]}" >"$out/$name.txt"
  files+=("$out/$name.txt")
done
node dist/bench/real-data-pick.js "${files[@]}"
