#!/usr/bin/env bash
# Measures the lessons again with the commands the lessons show, then makes
# the tables and charts; with arguments, only the lessons named (measure.sh 13 14).
# Every version runs in processes of its own, taking turns with the others
# (see interleave). All of them take more than an hour on 2 cores (each
# process pays its start-up and warm-up); the large shop is seeded once
# (about 15 s) if no earlier run did. Run it from the repository's root, with
# WORKSHOP_DATABASE_URL and WORKSHOP_REDIS_URL set (or Docker running), on a
# quiet machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
results=lessons/results
run() { echo "== $*" >&2; }

# interleave ROUNDS PKG BENCH 'IMPL...' [go test flags...] prints the results
# of the benchmarks whose top-level name BENCH matches, each version
# (sub-benchmark impl=IMPL) measured in a go test process of its own, -count 1,
# one process at a time: ROUNDS rounds in which the versions take turns, the
# order rotating by one each round, so that the machine's drift (a neighbour's
# load, a cache warming, a checkpoint) falls on every version alike and the
# report's spreads and tests compare samples taken side by side. $sizes, when
# set, filters the third level (sizes='^orders=(100|1000)$').
interleave() {
  local rounds=$1 pkg=$2 bench=$3
  local -a impls=($4)
  shift 4
  local n=${#impls[@]} round i impl pattern
  for ((round = 0; round < rounds; round++)); do
    for ((i = 0; i < n; i++)); do
      impl=${impls[$(((round + i) % n))]}
      pattern="($bench)/^impl=$(sed 's/[][\.*^$+?(){}|]/\\&/g' <<< "$impl")\$"
      if [ -n "${sizes:-}" ]; then
        pattern="$pattern/($sizes)"
      fi
      echo "== round $((round + 1))/$rounds: $pkg $pattern" >&2
      go test -run '^$' -bench "$pattern" -count 1 "$@" "$pkg"
    done
  done
}

lesson1() {
  run "lesson 1, loopback and 1 ms RTT"
  interleave 6 ./bench/nplusone 'GetUserOrders|ListPosts' 'naive batch scalable' -benchmem > $results/01-n-plus-one.bench
  WORKSHOP_RTT=1ms interleave 6 ./bench/nplusone 'GetUserOrders|ListPosts' 'naive batch scalable' -benchmem > $results/01-n-plus-one-rtt1ms.bench
}

lesson2() {
  run "lesson 2"
  interleave 6 ./bench/pagination 'UserOrdersPage|ListUserOrders' 'all offset offset-nocount keyset' -benchmem > $results/02-pagination.bench
  WORKSHOP_LARGE=1 interleave 6 ./bench/pagination 'UserOrdersPage' 'offset offset-nocount keyset' -benchmem > $results/02-pagination-large.bench
}

lesson3() {
  run "lesson 3"
  WORKSHOP_LARGE=1 interleave 6 ./bench/indexes 'OldestPendingOrders|InsertOrders' 'naive scalable' -benchmem > $results/03-indexes.bench
  go test -count 1 -run TestPendingOrdersIndexChangesThePlan ./bench/indexes -args -explain-out="$PWD/$results/03-explain.txt"
}

lesson4() {
  run "lesson 4 (live-heap-bytes: the headline needs it)"
  WORKSHOP_LARGE=1 interleave 6 ./bench/streaming 'ExportOrders' 'naive stream copy' -benchmem > $results/04-export.bench
}

lesson5() {
  run "lesson 5"
  interleave 6 ./bench/nestedloops 'FindDuplicates' 'naive scalable' -benchmem > $results/05-nested-loops.bench
  go test -run '^$' -bench 'FindDuplicates/impl=naive/users=10000' -count 1 -cpuprofile cpu.out -o bench.test ./bench/nestedloops > /dev/null
  go tool pprof -top -nodecount 12 bench.test cpu.out > $results/05-profile.txt
  rm -f cpu.out bench.test
}

lesson6() {
  run "lesson 6 (with WORKSHOP_RTT, Redis is behind the latency proxy too)"
  interleave 6 ./bench/caching 'GetProduct' 'naive inprocess redis' -benchmem > $results/06-caching.bench
  WORKSHOP_RTT=1ms interleave 6 ./bench/caching 'GetProduct' 'naive inprocess redis' -benchmem > $results/06-caching-rtt1ms.bench
}

lesson7() {
  run "lesson 7"
  interleave 6 ./bench/stampede 'BestSellers' 'naive singleflight' -benchmem > $results/07-stampede.bench
}

lesson8() {
  run "lesson 8"
  go test -count 1 -run TestProcessPaymentOnHostileInput ./bench/validation -args -hostile-out="$PWD/$results/08-hostile.md"
  interleave 6 ./bench/validation 'ProcessPayment|ParsePayment' 'naive scalable' -benchmem > $results/08-validation.bench
}

lesson9() {
  run "lesson 9"
  interleave 6 ./bench/retries '^BenchmarkPay$' 'naive naive-retry scalable' -benchmem > $results/09-retries.bench
}

lesson10() {
  run "lesson 10"
  interleave 6 ./bench/circuitbreaker 'PayDuringOutage' 'naive breaker breaker-no-outbox gobreaker' -benchmem > $results/10-circuit-breaker.bench
}

lesson11() {
  run "lesson 11"
  interleave 6 ./bench/bulkheads 'OrdersWhileSearchIsStuck' 'naive bulkhead' -benchmem > $results/11-bulkheads.bench
}

lesson12() {
  run "lesson 12"
  interleave 6 ./bench/races '^Benchmark(BuyHot|BuySpread|BuyBasket|Counter)$' 'naive update forupdate optimistic serializable sorted' -benchmem > $results/12-races.bench
  # the optimistic policy swept, each policy in a process of its own
  interleave 6 ./bench/races '^BenchmarkOptimisticPolicy(Hot|Spread)$' 'tries3-max10ms tries10-max10ms tries10-max50ms tries30-max50ms tries30-max200ms tries100-max200ms' -benchtime 3x > $results/12-races-policy.bench
}

lesson13() {
  run "lesson 13, loopback and 1 ms RTT"
  interleave 6 ./bench/connections '^Benchmark(Connect|PoolSize|FastQueryDuringSlowPayments)$' 'naive scalable pool' -benchmem > $results/13-connections.bench
  WORKSHOP_RTT=1ms interleave 6 ./bench/connections '^BenchmarkConnect$' 'naive scalable' -benchmem > $results/13-connections-rtt1ms.bench
  # the cliff: payments at fixed arrival rates (open loop), then the pool-size curve at fixed
  # arrival rates, the load sent by a generator in a process of its own. A rung is one operation
  # of at most about 3.5 s (a 2 s window, then a second's grace; past the cliff the queue left
  # is abandoned, not drained): about 20 minutes for the two on a quiet 2-CPU machine.
  interleave 6 ./bench/connections '^Benchmark(FastQueryAtPaymentRate|PaymentCliff)$' 'naive scalable' -benchtime 1x > $results/13-connections-rate.bench
  interleave 6 ./bench/connections '^BenchmarkPoolSizeAtRate$' 'conns-2 conns-4 conns-8 conns-16 conns-64' -benchtime 1x > $results/13-connections-poolrate.bench
}

lesson16() {
  run "lesson 16 (open-loop load, 3 s a rate: about 4 minutes; then coordinated omission, 40 s)"
  interleave 6 ./bench/overload '^BenchmarkOverload$' 'naive scalable' -benchtime 1x > $results/16-overload.bench
  interleave 6 ./bench/overload '^BenchmarkCoordinatedOmission$' 'closed open' -benchtime 1x > $results/16-overload-omission.bench
}

lesson15() {
  run "lesson 15"
  interleave 6 ./bench/observability '^BenchmarkObserve' 'naive scalable printf slog-debug-disabled slog-info-enabled off sampled1pct always' -benchmem > $results/15-observability.bench
  go test -count 1 -run '^TestObserveTraceFindsNPlusOne$' ./bench/observability -args -waterfall-out="$PWD/$results/15-waterfall.txt"
}

lesson14() {
  run "lesson 14, loopback and 1 ms RTT (WORKSHOP_LARGE=1 adds 100,000 orders: minutes more)"
  local impls='naive onetx batch multirow unnest upsert copy pgbench'
  interleave 6 ./bench/writes '^Benchmark(ImportOrders|PgbenchInit)$' "$impls" -benchtime 1x -benchmem > $results/14-writes.bench
  WORKSHOP_RTT=1ms sizes='^(orders=(100|1000)|rows=.*)$' interleave 6 ./bench/writes '^Benchmark(ImportOrders|PgbenchInit)$' "$impls" -benchtime 1x -benchmem > $results/14-writes-rtt1ms.bench
  # the explanation: the same COPY into tables that check less, pgbench -i's COPY, and the commit's latency
  interleave 6 ./bench/writes '^Benchmark(CopyInto|PgbenchInit|Commit)$' 'keys-fks deferred-fks staging keys-no-fks plain pgbench sync-on sync-off' > $results/14-writes-explained.bench
}

lesson18() {
  run "lesson 18 (starts a streaming replica: pg_basebackup of the whole server)"
  interleave 6 ./bench/replicas '^Benchmark(ReadYourWrites|ReadThroughput)$' 'naive nowait scalable primary primary+replica' -benchmem > $results/18-replicas.bench
}

lesson20() {
  run "lesson 20 (each migration under open-loop load on a fresh copy, 6 runs each: about 6 minutes; CreateIndex on the large shop; Backfill starts a streaming replica)"
  interleave 6 ./bench/migrations '^Benchmark(LockQueue|Backfill)$' 'naive scalable' -benchtime 1x > $results/20-migrations.bench
  WORKSHOP_LARGE=1 interleave 6 ./bench/migrations '^BenchmarkCreateIndex$' 'naive scalable' -benchtime 1x > $results/20-migrations-index.bench
}

lesson17() {
  run "lesson 17 (capacity at the SLO: cmd/load ramps a mixed load on cmd/shopd, each wiring a child process, runs alternating, loopback then 1 ms RTT, about 8 minutes each; then the fault drill, about a minute; then the hostile corpus against each wiring in a process of its own, about a minute and a half)"
  go run ./cmd/load -impl=naive,join,page,scalable -rates=100,200,400,800,1600,3200,6400 -duration=2s -count=6 -o $results/17-capstone.bench
  go run ./cmd/load -impl=naive,join,page,scalable -rates=50,100,200,400,800,1600,3200,6400 -duration=2s -count=6 -rtt=1ms -o $results/17-capstone-rtt1ms.bench
  go test -count 1 -run '^TestShopdFaultDrill$' ./bench/capstone -args -drill-out="$PWD/$results/17-drill.md"
  go test -count 1 -run '^TestShopdHostileCorpus$' ./bench/capstone -args -hostile-out="$PWD/$results/17-hostile.md"
}

lesson19() {
  run "lesson 19 (seeds its own decade of orders per size and side, once per server: about 4 minutes; then the large shop's seed beside pgbench -i, 8 rounds: about 5 minutes; then the decades' seed beside pgbench -i at 1M, 10M and 30M: about 20 minutes; then the large sizes once: about 45 minutes)"
  {
    interleave 6 ./bench/partitioning '^BenchmarkRetention$' 'naive scalable' -benchtime 1x -timeout 60m
    interleave 6 ./bench/partitioning '^BenchmarkRecentWeek$' 'btree pruning brin' -benchtime 1x -timeout 60m
    interleave 6 ./bench/partitioning '^BenchmarkPlanning$' 'scalable' -benchtime 1x -timeout 60m
  } > $results/19-partitioning.bench
  WORKSHOP_LARGE=1 interleave 8 ./bench/partitioning '^BenchmarkSeed$' 'concurrent pgbench' -benchtime 1x > $results/19-seed.bench
  # a decade of 1M, 10M and 30M orders seeded beside pgbench -i at as many rows, 3 rounds: about 6 minutes for
  # 1M and 10M, 15 for 30M (10 GB of disk at its peak)
  {
    WORKSHOP_LARGE=1 interleave 3 ./bench/partitioning '^BenchmarkSeedHistory$' 'naive scalable pgbench' -benchtime 1x -timeout 60m
    WORKSHOP_LARGE=2 sizes='^orders=30000000$' interleave 3 ./bench/partitioning '^BenchmarkSeedHistory$' 'naive scalable pgbench' -benchtime 1x -timeout 60m
  } > $results/19-seed-history.bench
  # the large sizes, one round (WORKSHOP_LARGE=2: decades of 1M, 10M and 30M orders, each side's seeded once per
  # server and copied for each run): about 45 minutes and 60 GB of disk at the peak
  {
    WORKSHOP_LARGE=2 interleave 1 ./bench/partitioning '^BenchmarkRetention$' 'naive scalable' -benchtime 1x -timeout 120m
    WORKSHOP_LARGE=2 interleave 1 ./bench/partitioning '^BenchmarkRecentWeek$' 'btree pruning brin' -benchtime 1x -timeout 120m
  } > $results/19-partitioning-large.bench
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
