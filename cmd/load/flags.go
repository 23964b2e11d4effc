package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"works-vs-scales/internal/load"
	"works-vs-scales/internal/shopd"
	"works-vs-scales/internal/workshopenv"
	"works-vs-scales/shop"
)

// options are the command's flags.
type options struct {
	target     string // a running service; "" starts cmd/shopd children
	impls      []string
	rates      []int
	duration   time.Duration
	timeout    time.Duration
	count      int
	rtt        time.Duration
	mix        shopd.Mix
	slo        slo
	dbURL      string
	dbName     string
	monitorURL string
	shopdBin   string
	out        string
}

// slo is the service level objective a step must meet.
type slo struct {
	p99    time.Duration // of the successful requests
	badPct float64       // errors, sheds and timeouts, in percent of the requests
}

func (s slo) String() string {
	return fmt.Sprintf("p99 of successes <= %v, errors + sheds + timeouts <= %g%%", s.p99, s.badPct)
}

// errUsage marks an error in the command line.
var errUsage = errors.New("usage")

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.target, "target", "", "URL of a running service to load (e.g. http://127.0.0.1:8080); default: start cmd/shopd in each -impl wiring")
	impls := fs.String("impl", strings.Join(shopd.Impls(), ","), "without -target: wirings of cmd/shopd to start and load, comma-separated; with it, the name its results carry (default target)")
	rates := fs.String("rates", "50,100,200,400,800", "the ramp: request rates per second, comma-separated, ascending, each held for -duration")
	fs.DurationVar(&o.duration, "duration", 2*time.Second, "how long each rate is held")
	fs.DurationVar(&o.timeout, "timeout", 2*time.Second, "how long a client waits for an answer; no latency is reported above it")
	fs.IntVar(&o.count, "count", 1, "how many times the ramp runs, the wirings alternating, their order rotating")
	fs.DurationVar(&o.rtt, "rtt", 0, "without -target: round-trip time cmd/shopd adds to every database round trip (its -rtt)")
	mix := fs.String("mix", shopd.DefaultMix.String(), "the workload's shares: orders (pages of ?limit=page), products, pay-new (fresh Idempotency-Keys), pay-reuse (a payment made before, again), and the page size")
	sloP99 := fs.Duration("slo-p99", 100*time.Millisecond, "the SLO's p99 of successful requests")
	fs.Float64Var(&o.slo.badPct, "slo-bad", 1, "the SLO's most errors + sheds + timeouts, in percent of the requests")
	fs.StringVar(&o.dbURL, "db", "", "without -target: the PostgreSQL server cmd/shopd -init makes its database on (default $"+workshopenv.DatabaseURL+")")
	fs.StringVar(&o.dbName, "dbname", shopd.DefaultDatabaseName(), "without -target: the shop database, as cmd/shopd -init makes it (default from $"+workshopenv.DBPrefix+")")
	fs.StringVar(&o.monitorURL, "monitor", "", "URL of the service's database, to sample its busy backends (default: the children's database; none with -target); losing it costs that metric, not the run")
	fs.StringVar(&o.shopdBin, "shopd", "", "without -target: a built cmd/shopd to start (default: go build it)")
	fs.StringVar(&o.out, "o", "", "write the benchmark lines to this file instead of stdout")
	if err := fs.Parse(args); err != nil {
		return o, fmt.Errorf("%w: %w", errUsage, err)
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	o.slo.p99 = *sloP99
	var err error
	if o.mix, err = parseMix(*mix); err != nil {
		return o, fmt.Errorf("%w: -mix: %w", errUsage, err)
	}
	if o.rates, err = parseRates(*rates); err != nil {
		return o, fmt.Errorf("%w: -rates: %w", errUsage, err)
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if o.target != "" {
		u, err := url.Parse(o.target)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return o, fmt.Errorf("%w: -target %s: want an http:// or https:// URL", errUsage, shop.Quote(o.target))
		}
		if u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(o.target, "?") || strings.HasSuffix(o.target, "#") {
			// The load appends its paths to the target: after a query
			// or a fragment, every request would go to the same page.
			return o, fmt.Errorf("%w: -target %s: want a URL without ?query or #fragment", errUsage, shop.Quote(o.target))
		}
		for _, name := range []string{"rtt", "db", "dbname", "shopd"} {
			if set[name] {
				return o, fmt.Errorf("%w: -%s starts a service, -target loads a running one: one or the other", errUsage, name)
			}
		}
		o.impls = []string{"target"}
		if set["impl"] {
			o.impls = []string{*impls}
		}
		if strings.ContainsAny(o.impls[0], "/ \t,=") || o.impls[0] == "" {
			return o, fmt.Errorf("%w: -impl %s: with -target, one name without / , = or spaces", errUsage, shop.Quote(o.impls[0]))
		}
	} else {
		for _, impl := range strings.Split(*impls, ",") {
			if !slices.Contains(shopd.Impls(), impl) {
				return o, fmt.Errorf("%w: -impl: %s is not one of %s", errUsage, shop.Quote(impl), strings.Join(shopd.Impls(), ", "))
			}
			if slices.Contains(o.impls, impl) {
				return o, fmt.Errorf("%w: -impl: %s twice", errUsage, impl)
			}
			o.impls = append(o.impls, impl)
		}
		if o.dbURL == "" {
			o.dbURL = os.Getenv(workshopenv.DatabaseURL)
		}
		if o.dbURL == "" {
			return o, fmt.Errorf("%w: no database: set -db or %s, or load a running service with -target", errUsage, workshopenv.DatabaseURL)
		}
	}
	switch {
	case o.duration <= 0 || o.timeout <= 0 || o.count < 1:
		return o, fmt.Errorf("%w: -duration, -timeout and -count must be positive", errUsage)
	case o.duration > MaxDuration:
		return o, fmt.Errorf("%w: -duration %v: at most %v a rate", errUsage, o.duration, MaxDuration)
	case o.rtt < 0:
		return o, fmt.Errorf("%w: -rtt %v: want 0 or more", errUsage, o.rtt)
	case o.slo.p99 <= 0 || o.slo.p99 > o.timeout:
		return o, fmt.Errorf("%w: -slo-p99 %v: want above 0 and at most -timeout (%v)", errUsage, o.slo.p99, o.timeout)
	case !(o.slo.badPct >= 0 && o.slo.badPct <= 100):
		return o, fmt.Errorf("%w: -slo-bad %v: want a percentage, 0 to 100", errUsage, o.slo.badPct)
	}
	return o, nil
}

// MaxDuration is the longest -duration: a step keeps every request's result
// until it ends, so an hour at load.MaxRate is already 360 million of them.
const MaxDuration = time.Hour

// parseRates reads an ascending list of rates per second, each at most
// load.MaxRate.
func parseRates(text string) ([]int, error) {
	var rates []int
	for _, r := range strings.Split(text, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(r))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%s is not a positive rate", shop.Quote(r))
		}
		if n > load.MaxRate {
			// Refused here, not by load.Open after the service was
			// started and the payments the load retries were made.
			return nil, fmt.Errorf("%d per second is more than load.MaxRate, %d", n, load.MaxRate)
		}
		if len(rates) > 0 && n <= rates[len(rates)-1] {
			return nil, fmt.Errorf("%d after %d: a ramp goes up", n, rates[len(rates)-1])
		}
		rates = append(rates, n)
	}
	return rates, nil
}

// parseMix reads a mix as Mix.String writes it; a share it does not name is
// DefaultMix's, so -mix=pay-reuse=0 takes the retries out and keeps the rest.
func parseMix(text string) (shopd.Mix, error) {
	m := shopd.DefaultMix
	fields := map[string]*int{"orders": &m.Orders, "products": &m.Products, "pay-new": &m.PayNew, "pay-reuse": &m.PayReuse, "page": &m.PageSize}
	seen := map[string]bool{}
	for _, part := range strings.Split(text, ",") {
		name, value, ok := strings.Cut(strings.TrimSpace(part), "=")
		field := fields[name]
		if !ok || field == nil {
			return m, fmt.Errorf("%s: want name=N, the names orders, products, pay-new, pay-reuse, page", shop.Quote(part))
		}
		if seen[name] {
			return m, fmt.Errorf("%s given twice", name)
		}
		seen[name] = true
		n, err := strconv.Atoi(value)
		if err != nil {
			return m, fmt.Errorf("%s=%s: not a whole number", name, shop.Quote(value))
		}
		*field = n
	}
	return m, m.Check()
}
