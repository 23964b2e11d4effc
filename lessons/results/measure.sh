#!/usr/bin/env bash
# Measures the lessons again with the commands the lessons show, then makes
# the tables and charts; with arguments, only the lessons named (measure.sh 13 14).
# All of them take about 50 minutes on 2 cores; the large shop is seeded once
# (about 15 s) if no earlier run did. Run it from the repository's root, with
# WORKSHOP_DATABASE_URL and WORKSHOP_REDIS_URL set (or Docker running), on a
# quiet machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
results=lessons/results
run() { echo "== $*" >&2; }

lesson1() {
  run "lesson 1, loopback and 1 ms RTT"
  go test -run '^$' -bench 'GetUserOrders|ListPosts' -benchmem -count 6 ./bench/nplusone > $results/01-n-plus-one.bench
  WORKSHOP_RTT=1ms go test -run '^$' -bench 'GetUserOrders|ListPosts' -benchmem -count 6 ./bench/nplusone > $results/01-n-plus-one-rtt1ms.bench
}

lesson2() {
  run "lesson 2"
  go test -run '^$' -bench 'UserOrdersPage|ListUserOrders' -benchmem -count 6 ./bench/pagination > $results/02-pagination.bench
  WORKSHOP_LARGE=1 go test -run '^$' -bench 'UserOrdersPage' -benchmem -count 6 ./bench/pagination > $results/02-pagination-large.bench
}

lesson3() {
  run "lesson 3"
  WORKSHOP_LARGE=1 go test -run '^$' -bench 'OldestPendingOrders|InsertOrders' -benchmem -count 6 ./bench/indexes > $results/03-indexes.bench
  go test -count 1 -run TestPendingOrdersIndexChangesThePlan ./bench/indexes -args -explain-out="$PWD/$results/03-explain.txt"
}

lesson4() {
  run "lesson 4 (live-heap-bytes: the headline needs it)"
  WORKSHOP_LARGE=1 go test -run '^$' -bench 'ExportOrders' -benchmem -count 6 ./bench/streaming > $results/04-export.bench
}

lesson5() {
  run "lesson 5"
  go test -run '^$' -bench 'FindDuplicates' -benchmem -count 6 ./bench/nestedloops > $results/05-nested-loops.bench
  go test -run '^$' -bench 'FindDuplicates/impl=naive/users=10000' -count 1 -cpuprofile cpu.out -o bench.test ./bench/nestedloops > /dev/null
  go tool pprof -top -nodecount 12 bench.test cpu.out > $results/05-profile.txt
  rm -f cpu.out bench.test
}

lesson6() {
  run "lesson 6 (with WORKSHOP_RTT, Redis is behind the latency proxy too)"
  go test -run '^$' -bench 'GetProduct' -benchmem -count 6 ./bench/caching > $results/06-caching.bench
  WORKSHOP_RTT=1ms go test -run '^$' -bench 'GetProduct' -benchmem -count 6 ./bench/caching > $results/06-caching-rtt1ms.bench
}

lesson7() {
  run "lesson 7"
  go test -run '^$' -bench 'BestSellers' -benchmem -count 6 ./bench/stampede > $results/07-stampede.bench
}

lesson8() {
  run "lesson 8"
  go test -count 1 -run TestProcessPaymentOnHostileInput ./bench/validation -args -hostile-out="$PWD/$results/08-hostile.md"
  for run in 1 2 3 4 5 6; do # the versions take turns, each in a process of its own (see lesson 8)
    for impl in naive scalable; do
      go test -run '^$' -bench "ProcessPayment/impl=$impl|ParsePayment/impl=$impl" -benchmem -count 1 ./bench/validation
    done
  done > $results/08-validation.bench
}

lesson9() {
  run "lesson 9"
  impls=(naive naive-retry scalable)
  for run in 0 1 2 3 4 5; do # each version in a process of its own, the order rotating (as lesson 8)
    for i in 0 1 2; do
      impl=${impls[$(( (run + i) % 3 ))]}
      go test -run '^$' -bench "BenchmarkPay\$/^impl=$impl\$/" -benchmem -count 1 ./bench/retries
    done
  done > $results/09-retries.bench
}

lesson10() {
  run "lesson 10"
  go test -run '^$' -bench 'PayDuringOutage' -benchmem -count 6 ./bench/circuitbreaker > $results/10-circuit-breaker.bench
}

lesson11() {
  run "lesson 11"
  go test -run '^$' -bench 'OrdersWhileSearchIsStuck' -benchmem -count 6 ./bench/bulkheads > $results/11-bulkheads.bench
}

lesson12() {
  run "lesson 12"
  go test -run '^$' -bench '^Benchmark(BuyHot|BuySpread|BuyBasket|Counter)$' -benchmem -count 6 ./bench/races > $results/12-races.bench
}

lesson13() {
  run "lesson 13, loopback and 1 ms RTT"
  go test -run '^$' -bench '^Benchmark(Connect|PoolSize|FastQueryDuringSlowPayments)$' -benchmem -count 6 ./bench/connections > $results/13-connections.bench
  WORKSHOP_RTT=1ms go test -run '^$' -bench '^BenchmarkConnect$' -benchmem -count 6 ./bench/connections > $results/13-connections-rtt1ms.bench
}

lesson16() {
  run "lesson 16 (open-loop load, 3 s a rate: about 4 minutes; then coordinated omission, 40 s)"
  go test -run '^$' -bench '^BenchmarkOverload$' -benchtime 1x -count 6 ./bench/overload > $results/16-overload.bench
  go test -run '^$' -bench '^BenchmarkCoordinatedOmission$' -benchtime 1x -count 6 ./bench/overload > $results/16-overload-omission.bench
}

lesson15() {
  run "lesson 15"
  go test -run '^$' -bench '^BenchmarkObserve' -benchmem -count 6 ./bench/observability > $results/15-observability.bench
  go test -count 1 -run '^TestObserveTraceFindsNPlusOne$' ./bench/observability -args -waterfall-out="$PWD/$results/15-waterfall.txt"
}

lesson14() {
  run "lesson 14, loopback and 1 ms RTT (WORKSHOP_LARGE=1 adds 100,000 orders: minutes more)"
  go test -run '^$' -bench '^Benchmark(ImportOrders|PgbenchInit)$' -benchtime 1x -benchmem -count 6 ./bench/writes > $results/14-writes.bench
  WORKSHOP_RTT=1ms go test -run '^$' -bench '^Benchmark(ImportOrders|PgbenchInit)$//^(orders=(100|1000)|rows=.*)$' -benchtime 1x -benchmem -count 6 ./bench/writes > $results/14-writes-rtt1ms.bench
}

lesson18() {
  run "lesson 18 (starts a streaming replica: pg_basebackup of the whole server)"
  go test -run '^$' -bench '^Benchmark(ReadYourWrites|ReadThroughput)$' -benchmem -count 6 ./bench/replicas > $results/18-replicas.bench
}

lesson17() {
  run "lesson 17 (the service under open-loop load, loopback then 1 ms RTT; cmd/load loads its own database once; then the fault drill, about a minute; then the hostile corpus against each wiring in a process of its own, about a minute and a half)"
  go run ./cmd/load -impl=naive,scalable -rates=100,200,400,800,1600,3200 -duration=2s -count=6 -o $results/17-capstone.bench
  go run ./cmd/load -impl=naive,join,page,scalable -rates=50,100,200,400 -duration=2s -count=6 -rtt=1ms -o $results/17-capstone-rtt1ms.bench
  go test -count 1 -run '^TestShopdFaultDrill$' ./bench/capstone -args -drill-out="$PWD/$results/17-drill.md"
  go test -count 1 -run '^TestShopdHostileCorpus$' ./bench/capstone -args -hostile-out="$PWD/$results/17-hostile.md"
}

lesson19() {
  run "lesson 19 (seeds its own decade of orders per benchmark: about 4 minutes; WORKSHOP_LARGE=1 adds 1M and 10M orders, much longer)"
  go test -run '^$' -bench '^Benchmark(Retention|RecentWeek|Planning)$' -benchtime 1x -count 3 -timeout 60m ./bench/partitioning > $results/19-partitioning.bench
}

lessons=("$@")
if [ ${#lessons[@]} -eq 0 ]; then
  lessons=($(declare -F | sed -n 's/^declare -f lesson\([0-9]*\)$/\1/p' | sort -n))
fi
for n in "${lessons[@]}"; do
  "lesson$n"
done

run "tables and charts"
go run ./cmd/lessons
