#!/usr/bin/env bash
# The shared real logs through `dupn train` with default settings and flags only (no pre-processing), each
# as it comes and sorted by time (users interleaved, as event logs are), with the reader's report, the
# validation table beside the four baselines and the next-item table. Results go to docs/real-data.md by
# hand; this prints them. Usage: bash bench/real-data.sh [../shared/data] [extra dupn train flags…]
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-../shared/data}
shift || true
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
dupn() { node dist/lib/cli/main.js "$@"; }

run() { # <name> <file> <flags…>
  local name=$1 file=$2
  shift 2
  echo "## $name"
  echo '```'
  echo "dupn train --data $file $* --out $name.safetensors"
  dupn train --data "$file" "$@" --out "$out/$name.safetensors" --no-progress 2>&1 | grep -v '^epoch 1/1 ·'
  echo '```'
}

# A copy sorted by time (stable, so rows of one time keep their order); header lines stay first.
by_time() { # <file> <sort flags…> → path
  local file=$1
  shift
  local sorted="$out/$(basename "$file" .csv)-by-time.csv"
  if [[ ${HEADER:-0} == 1 ]]; then
    { head -n 1 "$file"; tail -n +2 "$file" | sort -s "$@"; } >"$sorted"
  else
    sort -s "$@" "$file" >"$sorted"
  fi
  echo "$sorted"
}

tb="$data/taobao-userbehavior"
cat "$tb/head.csv" "$tb/tail.csv" >"$out/taobao.csv"
run taobao "$out/taobao.csv" "$@"
run taobao-by-time "$(by_time "$out/taobao.csv" -t, -k5,5n)" "$@"

tm="$data/tmall-user-log/user_log.csv"
tmflags=(--columns user=user_id,item=item_id,category=cat_id,shop=merchant_id,brand=brand_id,month=month,day=day,type=action --types 0=pv,1=cart,2=buy,3=fav --year 2014)
run tmall "$tm" "${tmflags[@]}" "$@"
HEADER=1 run tmall-by-time "$(HEADER=1 by_time "$tm" -t, -k6,6n -k7,7n)" "${tmflags[@]}" "$@"

dg="$data/diginetica-sessions/train-item-views.csv"
dgflags=(--delimiter ';' --columns user=session_id,item=item_id,day=eventdate,offset=timeframe)
run diginetica "$dg" "${dgflags[@]}" "$@"
HEADER=1 run diginetica-by-time "$(HEADER=1 by_time "$dg" -t';' -k5,5 -k4,4n)" "${dgflags[@]}" "$@"
