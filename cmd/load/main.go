// Command load measures a running HTTP service of the shop under an
// open-loop ramp of arrival rates, from a process of its own, and says at
// which rate it stops meeting its service level objective (SLO): its
// capacity.
//
// With -target, it loads the service at that URL, whatever runs it. Without,
// it starts cmd/shopd as a child process, one wiring at a time (-impl), on a
// loopback port, against the database cmd/shopd -init makes (created and
// loaded on first use), loads it, and stops it (SIGTERM: requests in flight
// answered, background work drained, then the pools closed) before the next;
// with -count above 1 the wirings alternate, their order rotating from run to
// run, so that a machine's slow minute falls on each.
//
// The load is a mix (-mix, DefaultMix by default): pages of a user's orders
// of one size from every wiring (?limit=), products, payments under fresh
// Idempotency-Keys, and retries of payments made before the ramp, key and
// body. Requests leave on schedule whatever the service answers
// (internal/load's open loop, on vegeta's attacker). Each request names its
// user as its client in X-Forwarded-For, and the children read it
// (-client-header), so that the limit per client holds per user.
//
// For each wiring and rate it writes a benchmark line
// (BenchmarkShopd/impl=naive/rate=100): the p50, p99 and p99.9 of the
// successful requests; the shares of requests shed (503, 429), failed
// otherwise, and timed out, apart; how many requests left late and whether
// the generator kept its schedule (kept-schedule 0: the step measured the
// generator, not only the service); and, while a monitoring connection to
// the database holds, its busy backends. For each wiring and run it writes
// the capacity (BenchmarkCapacity/impl=naive): the highest rate up to which
// every step met the SLO, p99 of successes ≤ -slo-p99 and errors, sheds and
// timeouts ≤ -slo-bad percent; knee-found 0 says the ramp ended, or the
// generator fell behind, before the service missed it. cmd/lessons makes
// lesson 17's tables, knee chart and headline of them.
//
//	go run ./cmd/load -impl=naive,join,page,scalable -rates=100,200,400,800 -duration=2s -count=3
//	go run ./cmd/load -target=http://127.0.0.1:8080 -rates=50,100,200 -o mine/17-target.bench
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"
	"time"

	"works-vs-scales/internal/shopd"
	"works-vs-scales/shop"
)

func main() {
	o, err := parseFlags(os.Args[1:], os.Stderr)
	if err == nil {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		err = run(ctx, o, os.Stdout, os.Stderr)
		stop()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options, stdout, stderr io.Writer) error {
	out := stdout
	if o.out != "" {
		f, err := os.Create(o.out)
		if err != nil {
			return err
		}
		defer f.Close()
		out = f
	}
	var services serviceStarter
	monitorURL := o.monitorURL
	if o.target == "" {
		dbURL, err := shopd.InitDatabase(ctx, o.dbURL, o.dbName, shop.Small)
		if err != nil {
			return err
		}
		if monitorURL == "" {
			monitorURL = dbURL
		}
		bin := o.shopdBin
		if bin == "" {
			dir, err := os.MkdirTemp("", "load-shopd-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			if bin, err = buildShopd(ctx, dir); err != nil {
				return err
			}
		}
		services = children{bin: bin, dbURL: dbURL, rtt: o.rtt, logs: stderr}
	} else {
		services = running{base: o.target}
	}
	mon := newMonitor(monitorURL, stderr)
	defer mon.Close()
	return measure(ctx, o, services, mon, out, stderr)
}

// measure runs the ramps o asks for against the services, and writes their
// results to out and a table to stderr.
func measure(ctx context.Context, o options, services serviceStarter, mon *monitor, out, stderr io.Writer) error {
	if err := writeConfig(ctx, out, o, mon); err != nil {
		return err
	}
	nonce := make([]byte, 4)
	rand.Read(nonce)
	table := tabwriter.NewWriter(stderr, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(table, "run\timpl\trate/s\tgoodput/s\tp50\tp99\tp99.9\tshed\terrors\ttimed out\tlate\tschedule\t")
	for run := range o.count {
		for _, impl := range rotate(o.impls, run) {
			svc, err := services.start(ctx, impl)
			if err != nil {
				return err
			}
			wl := shopd.Workload{Base: svc.url(), Scale: shop.Small, Mix: o.mix, Run: fmt.Sprintf("%s-%d-%s", hex.EncodeToString(nonce), run, impl)}
			steps, err := ramp(ctx, o, wl, mon, run)
			// The service stops after the load's last answer, and
			// before its pools close: no request meets a closed pool.
			if stopErr := svc.stop(); err == nil {
				err = stopErr
			}
			if err != nil {
				return err
			}
			for _, st := range steps {
				if err := st.write(out, impl); err != nil {
					return err
				}
				fmt.Fprintf(table, "%d\t%s\t%.0f\t%.0f\t%v\t%v\t%v\t%.2f%%\t%.2f%%\t%.2f%%\t%d\t%s\t\n", run+1, impl, st.Rate, st.Goodput(),
					st.OKP50.Round(10*time.Microsecond), st.OKP99.Round(10*time.Microsecond), st.OKP999.Round(10*time.Microsecond),
					st.pct(st.Refused), st.pct(st.Errors-st.Refused-st.Timeouts), st.pct(st.Timeouts), st.Late, scheduleWord(st.KeptSchedule()))
			}
			c := capacity(steps, o.slo)
			if err := c.write(out, impl); err != nil {
				return err
			}
			fmt.Fprintf(table, "%d\t%s\tcapacity %.0f/s\t%s\t\t\t\t\t\t\t\t\t\n", run+1, impl, c.rate, c.says())
			table.Flush() // a wiring's lines as soon as it is done
		}
	}
	return table.Flush()
}

// rotate returns impls started at run's place: the order of the wirings
// changes from one run to the next.
func rotate(impls []string, run int) []string {
	k := run % len(impls)
	return append(append([]string{}, impls[k:]...), impls[:k]...)
}

func scheduleWord(kept bool) string {
	if kept {
		return "kept"
	}
	return "INVALID: the generator fell behind"
}
