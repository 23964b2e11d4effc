#!/usr/bin/env bash
# flakehunt.sh hunts flaky tests, as a maintainer does before a release: it
# runs every test package of the module COUNT times (default 10) while a
# second process keeps one CPU busy, then again under the race detector
# RACE_COUNT times (default 3), and prints each package's verdict and the
# failing tests' names. Logs go to mine/flakehunt/ (ignored by git).
#
#	bash scripts/flakehunt.sh            # -count=10, then -race -count=3
#	bash scripts/flakehunt.sh 50 5 ./bench/replicas/...
#	FLAKEHUNT_TIMEOUT=60m bash scripts/flakehunt.sh 10 3 ./bench/capstone
#
# Each package's go test gets -timeout FLAKEHUNT_TIMEOUT (default 30m, for all
# of its COUNT runs together), so a hung test fails its package with a stack
# dump instead of stalling the hunt.
# It needs what the tests need (WORKSHOP_DATABASE_URL and WORKSHOP_REDIS_URL,
# or Docker) and takes about an hour and a half on 2 CPUs. A failure found is
# fixed at its root (a barrier, a held lock, an observed state), never with a
# longer sleep or a wider bound.
set -uo pipefail
cd "$(dirname "$0")/.."
count=${1:-10}
race_count=${2:-3}
timeout=${FLAKEHUNT_TIMEOUT:-30m}
shift $(( $# < 2 ? $# : 2 ))
packages=("$@")
[ ${#packages[@]} -gt 0 ] || packages=(./...)
logs=mine/flakehunt
mkdir -p "$logs"

# One CPU busy for the whole hunt: a loaded machine is where timing bugs show.
( while :; do :; done ) &
burner=$!
trap 'kill "$burner" 2>/dev/null' EXIT

failed=0
hunt() { # hunt NAME GO-TEST-FLAGS...: every package, one at a time
  local name=$1
  shift
  for pkg in $(go list "${packages[@]}"); do
    local log="$logs/$name-$(echo "${pkg#works-vs-scales/}" | tr / _).log"
    local started=$SECONDS
    if go test -timeout="$timeout" "$@" "$pkg" >"$log" 2>&1; then
      printf '%-8s ok    %5ds  %s\n' "$name" $((SECONDS - started)) "$pkg"
    else
      failed=1
      printf '%-8s FAIL  %5ds  %s\n' "$name" $((SECONDS - started)) "$pkg"
      grep -E '^\s*--- FAIL|^panic: test timed out' "$log" | sort | uniq -c | sed 's/^/           /'
    fi
  done
}

hunt "count$count" -count="$count"
hunt "race$race_count" -race -count="$race_count"
if [ "$failed" -ne 0 ]; then
  echo "flaky or failing: see $logs/" >&2
  exit 1
fi
echo "no failures in $count runs, nor in $race_count under -race, with one CPU kept busy"
