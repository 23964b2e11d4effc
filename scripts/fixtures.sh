#!/usr/bin/env bash
# fixtures.sh proves, as a maintainer does before a room, that the exercise
# checks of lessons 12 to 18 reject the wrong answers people write every time,
# not on a lucky run: it runs each lesson's fixture tests (every
# TestExerciseNNCheckFailsOn…, the starting point and each wrong answer)
# COUNT times (default 20), one lesson's package at a time, under -race where
# the lesson's check runs under it (its exercise_test.go calls
# benchkit.RequireRace: 12, 13, 16 and 18), and prints per test how many runs
# passed, failed and skipped. It fails if any fixture failed, skipped (a race
# fixture outside -race, the room's replica) or ran fewer than COUNT times (a
# panic, a timeout), or if a lesson has no fixture. Logs go to mine/fixtures/
# (ignored by git), or to FIXTURES_LOGS, for two runs at once.
#
#	bash scripts/fixtures.sh              # -count=20, lessons 12 to 18
#	bash scripts/fixtures.sh 5 16 18      # -count=5, lessons 16 and 18
#	FIXTURES_LESSON18_DATABASE_URL='postgres://postgres@127.0.0.1:5436/postgres?sslmode=disable' bash scripts/fixtures.sh
#
# Each lesson's go test gets -timeout FIXTURES_TIMEOUT (default 60m, for all
# of its runs together), so a hung fixture fails with a stack dump instead of
# stalling the script. It needs what the tests need (WORKSHOP_DATABASE_URL
# and WORKSHOP_REDIS_URL, or Docker); lesson 18's fixtures copy the whole
# server into a replica, once per run, so FIXTURES_LESSON18_DATABASE_URL, when
# set, is the WORKSHOP_DATABASE_URL of lesson 18 alone: a small server of the
# maintainer's own keeps that copy fast. A fixture that passes only sometimes
# is a check whose verdict depends on timing: force its race with a barrier
# or a held lock, never a longer sleep.
set -uo pipefail
cd "$(dirname "$0")/.."
count=${1:-20}
timeout=${FIXTURES_TIMEOUT:-60m}
shift $(( $# < 1 ? $# : 1 ))
lessons=("$@")
[ ${#lessons[@]} -gt 0 ] || lessons=(12 13 14 15 16 17 18)
logs=${FIXTURES_LOGS:-mine/fixtures}
mkdir -p "$logs"

failed=0
started_all=$SECONDS
for n in "${lessons[@]}"; do
  # The lesson's package: the one whose exercise_test.go holds its check.
  exercise_test=$(grep -l "^func TestExercise$n(" bench/*/exercise_test.go)
  if [ -z "$exercise_test" ]; then
    echo "lesson $n: no bench/*/exercise_test.go has TestExercise$n" >&2
    failed=1
    continue
  fi
  pkg=./$(dirname "$exercise_test")
  build=()
  mode=plain
  if grep -q 'benchkit.RequireRace' "$exercise_test"; then
    build=(-race)
    mode=race
  fi
  env=()
  if [ "$n" = 18 ] && [ -n "${FIXTURES_LESSON18_DATABASE_URL:-}" ]; then
    env=(WORKSHOP_DATABASE_URL="$FIXTURES_LESSON18_DATABASE_URL")
  fi
  pattern="^TestExercise${n}CheckFailsOn"
  mapfile -t tests < <(go test "${build[@]}" -list "$pattern" "$pkg" | grep '^Test')
  if [ ${#tests[@]} -eq 0 ]; then
    echo "lesson $n: $pkg has no test matching $pattern" >&2
    failed=1
    continue
  fi
  log="$logs/lesson$n.log"
  started=$SECONDS
  env "${env[@]}" go test "${build[@]}" -count="$count" -timeout="$timeout" -v -run "$pattern" "$pkg" >"$log" 2>&1
  status=$?
  printf 'lesson %s  %s  %-5s  %5ds  exit %d  %s\n' "$n" "$pkg" "$mode" $((SECONDS - started)) "$status" "$log"
  [ "$status" -eq 0 ] || failed=1
  for t in "${tests[@]}"; do
    pass=$(grep -c -E "^--- PASS: $t " "$log")
    fail=$(grep -c -E "^--- FAIL: $t " "$log")
    skip=$(grep -c -E "^--- SKIP: $t " "$log")
    verdict=ok
    if [ "$pass" -ne "$count" ] || [ "$fail" -ne 0 ] || [ "$skip" -ne 0 ]; then
      verdict=BAD
      failed=1
    fi
    printf '  %-4s %3d/%d passed, %d failed, %d skipped  %s\n' "$verdict" "$pass" "$count" "$fail" "$skip" "$t"
  done
  grep -E '^panic: test timed out' "$log" | sed 's/^/  /'
done
elapsed=$((SECONDS - started_all))
if [ "$failed" -ne 0 ]; then
  echo "a fixture failed, skipped or did not run $count times (in ${elapsed}s): see $logs/" >&2
  exit 1
fi
echo "every fixture of lessons ${lessons[*]} rejected its answer in all $count runs (${elapsed}s)"
