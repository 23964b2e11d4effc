package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"works-vs-scales/internal/workshopenv"
)

// minFreeDisk is the free space a trainee's machine needs: the Go build and
// race-build caches (about 1 GiB each) and lesson 18's local replica (a copy
// of the whole server, 304 MB on a shared server of the workshop's).
const minFreeDisk = 3 << 30

// A need is something a lesson needs from the room.
type need string

const (
	needGo          need = "Go"
	needBuildCache  need = "build cache"
	needPostgres    need = "PostgreSQL"
	needRedis       need = "Redis"
	needPgBouncer   need = "PgBouncer"
	needPgStat      need = "pg_stat_statements"
	needReplication need = "a replica"
	needRaceCache   need = "race-build cache"
	needConns       need = "connections"
	needDisk        need = "disk"
)

// A finding is what doctor found of one need: ready or not, what it saw, and
// what the trainer does about it.
type finding struct {
	ready bool
	saw   string
	fix   string // the trainer's part, when not ready
}

// doctor checks, in seconds, what each lesson needs from the room (the
// trainer's view, before the day) and says per lesson what is missing and
// how to fix it. It changes nothing.
func (w *workshop) doctor(ctx context.Context, args []string) error {
	flags := flag.NewFlagSet("doctor", flag.ContinueOnError)
	flags.SetOutput(w.out)
	trainees := flags.Int("trainees", 10, "how many trainees share the server")
	if err := flags.Parse(args); err != nil {
		return fmt.Errorf("doctor: %w", errUsage)
	}
	start := time.Now()
	found := w.examine(ctx, *trainees)
	exercises, err := w.exercises()
	if err != nil {
		return err
	}
	fmt.Fprintf(w.out, "works-vs-scales doctor: what the room needs, for %d trainees (the trainer's view; nothing is changed)\n\n", *trainees)
	missing := 0
	for _, n := range []need{needGo, needPostgres, needConns, needPgStat, needReplication, needPgBouncer, needRedis, needDisk, needBuildCache, needRaceCache} {
		f := found[n]
		mark := "ok     "
		if !f.ready {
			mark = "MISSING"
			missing++
		}
		fmt.Fprintf(w.out, "  %s  %-20s %s\n", mark, n, f.saw)
		if !f.ready {
			fmt.Fprintf(w.out, "  %7s  %-20s fix: %s\n", "", "", f.fix)
		}
	}
	fmt.Fprintln(w.out, "\nPer lesson:")
	for _, e := range exercises {
		var lacks []string
		for _, n := range w.needs(e) {
			if !found[n].ready {
				lacks = append(lacks, string(n))
			}
		}
		status := "ready"
		if len(lacks) > 0 {
			status = "missing: " + strings.Join(lacks, ", ") + " (fix above)"
		}
		fmt.Fprintf(w.out, "  %-26s %s\n", w.title(e), status)
	}
	fmt.Fprintf(w.out, "\nChecked in %.1f s. What a server needs and why: lessons/TRAINER.md, \"Setting up the room\".\n", time.Since(start).Seconds())
	if missing > 0 {
		return fmt.Errorf("doctor: %d of the room's needs are missing", missing)
	}
	return nil
}

// needs returns what exercise e's lesson needs, read from its test package:
// the harness, Redis, PgBouncer, pg_stat_statements, a replica; and the race
// build when its check runs with -race.
func (w *workshop) needs(e exercise) []need {
	out := []need{needGo, needBuildCache, needDisk}
	files, _ := filepath.Glob(filepath.Join(w.root, e.bench(), "*.go"))
	var code strings.Builder
	for _, f := range files {
		text, err := os.ReadFile(f)
		if err == nil {
			code.Write(text)
		}
	}
	uses := func(s string) bool { return strings.Contains(code.String(), s) }
	// Every test package's TestMain calls pgtest.Main, which connects only
	// when a test asks the harness for a database: it is no need of its own.
	if e.needsDB || strings.Contains(strings.ReplaceAll(code.String(), "pgtest.Main(", ""), "pgtest.") {
		out = append(out, needPostgres, needConns)
	}
	for _, n := range []struct {
		need need
		mark string
	}{{needRedis, "redistest."}, {needPgBouncer, "PgBouncer"}, {needPgStat, "pg_stat_statements"}, {needReplication, "WithReplica("}} {
		if uses(n.mark) {
			out = append(out, n.need)
		}
	}
	if e.race {
		out = append(out, needRaceCache)
	}
	return out
}

// examine looks at every need once.
func (w *workshop) examine(ctx context.Context, trainees int) map[need]finding {
	found := map[need]finding{}
	found[needGo] = goVersion(w.root)
	w.examineServer(ctx, trainees, found)
	found[needPgBouncer] = pgBouncer()
	found[needRedis] = redisReady(ctx)
	found[needDisk] = freeDisk(w.root)
	found[needBuildCache] = w.cacheWarm(ctx, false)
	found[needRaceCache] = w.cacheWarm(ctx, true)
	return found
}

var goLine = regexp.MustCompile(`(?m)^go (\d+)\.(\d+)`)

// goVersion compares this Go with the one go.mod asks for.
func goVersion(root string) finding {
	mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	m := goLine.FindSubmatch(mod)
	if err != nil || m == nil {
		return finding{saw: "go.mod not read", fix: "run doctor from the repository's root"}
	}
	want := string(m[1]) + "." + string(m[2])
	have := strings.TrimPrefix(runtime.Version(), "go")
	if versionAtLeast(have, want) {
		return finding{ready: true, saw: fmt.Sprintf("go%s (go.mod asks for %s)", have, want)}
	}
	return finding{saw: fmt.Sprintf("go%s, older than go.mod's %s", have, want), fix: "install Go " + want + " or newer on every trainee's machine (https://go.dev/dl)"}
}

// versionAtLeast compares dotted versions' first two numbers.
func versionAtLeast(have, want string) bool {
	h, w := strings.Split(have, "."), strings.Split(want, ".")
	for i := 0; i < 2; i++ {
		a, b := 0, 0
		if i < len(h) {
			a, _ = strconv.Atoi(strings.TrimRightFunc(h[i], func(r rune) bool { return r < '0' || r > '9' }))
		}
		if i < len(w) {
			b, _ = strconv.Atoi(w[i])
		}
		if a != b {
			return a > b
		}
	}
	return true
}

// examineServer connects to WORKSHOP_DATABASE_URL once and reads its
// version, max_connections, pg_stat_statements and replication settings.
func (w *workshop) examineServer(ctx context.Context, trainees int, found map[need]finding) {
	budget, budgetSaid, turn := traineeConns()
	url := os.Getenv(workshopenv.DatabaseURL)
	if url == "" {
		_, err := exec.LookPath("docker")
		f := finding{ready: err == nil, saw: workshopenv.DatabaseURL + " is not set: each trainee's harness starts a container (Docker found)", fix: "set " + workshopenv.DatabaseURL + " to the room's server, or install Docker on every trainee's machine"}
		if err != nil {
			f.saw = workshopenv.DatabaseURL + " is not set and there is no docker"
		}
		for _, n := range []need{needPostgres, needConns, needPgStat, needReplication} {
			found[n] = f
		}
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		f := finding{saw: fmt.Sprintf("%s: %v", workshopenv.Redacted(url), err), fix: "start the room's PostgreSQL, or correct " + workshopenv.DatabaseURL}
		for _, n := range []need{needPostgres, needConns, needPgStat, needReplication} {
			found[n] = f
		}
		return
	}
	defer conn.Close(context.Background())
	var version, maxConns, reserved, preload, walLevel, walSenders string
	var replication, alterDelay bool
	err = conn.QueryRow(ctx, `SELECT current_setting('server_version_num'), current_setting('max_connections'),
		current_setting('superuser_reserved_connections'), coalesce(current_setting('shared_preload_libraries', true), '?'),
		current_setting('wal_level'), current_setting('max_wal_senders'),
		(SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user),
		has_parameter_privilege('recovery_min_apply_delay', 'ALTER SYSTEM')`).
		Scan(&version, &maxConns, &reserved, &preload, &walLevel, &walSenders, &replication, &alterDelay)
	if err != nil {
		found[needPostgres] = finding{saw: fmt.Sprintf("%s: reading its settings: %v", workshopenv.Redacted(url), err), fix: "PostgreSQL 15 or newer, and a role that may read its settings (lessons/TRAINER.md)"}
		for _, n := range []need{needConns, needPgStat, needReplication} {
			found[n] = found[needPostgres]
		}
		return
	}
	v, _ := strconv.Atoi(version)
	found[needPostgres] = finding{ready: v >= 150000, saw: fmt.Sprintf("PostgreSQL %d.%d at %s", v/10000, v%10000, workshopenv.Redacted(url)), fix: "PostgreSQL 15 or newer"}

	limit, _ := strconv.Atoi(maxConns)
	keep, _ := strconv.Atoi(reserved)
	want := trainees*budget + turn + keep
	saw := fmt.Sprintf("max_connections %d; %d trainees × %s + %d reserved = %d", limit, trainees, budgetSaid, keep, want)
	if turn > 0 {
		saw = fmt.Sprintf("max_connections %d; %d trainees × %s + %d for the one check at a time above it + %d reserved = %d", limit, trainees, budgetSaid, turn, keep, want)
	}
	found[needConns] = finding{ready: limit >= want, saw: saw,
		fix: fmt.Sprintf("set %s=%d in every trainee's environment (then %d trainees fit), or raise max_connections to %d (the DBA, once, before the day)", workshopenv.MaxConns, fittingBudget(limit-keep, trainees), trainees, want)}

	loaded := slicesContainsTrimmed(strings.Split(preload, ","), "pg_stat_statements")
	found[needPgStat] = finding{ready: loaded, saw: "the server preloads " + strconv.Quote(preload),
		fix: "the DBA adds pg_stat_statements to shared_preload_libraries and restarts the server once, before the day, and creates the extension in template1 (lessons/TRAINER.md, \"What a server needs\")"}

	if replica := os.Getenv(workshopenv.ReplicaURL); replica != "" {
		found[needReplication] = replicaReady(ctx, replica)
		return
	}
	senders, _ := strconv.Atoi(walSenders)
	ok := replication && alterDelay && walLevel != "minimal" && senders > 0 && trainees <= 1
	found[needReplication] = finding{ready: ok,
		saw: fmt.Sprintf("no %s; each trainee copies the whole server (REPLICATION: %v, the grant on recovery_min_apply_delay (for the trainer, TRAINER.md): %v, wal_level %s, max_wal_senders %d)", workshopenv.ReplicaURL, replication, alterDelay, walLevel, senders),
		fix: fmt.Sprintf("for a room, the trainer sets up one replica and sets %s for everyone (lessons/TRAINER.md, \"One replica for the room\"); a copy per trainee is for a server of one's own", workshopenv.ReplicaURL)}
}

// traineeConns returns the connections doctor weighs one trainee at, and how
// it says so: the budget WORKSHOP_MAX_CONNS sets, which caps everything a
// trainee runs, the harness's own connections included; unset, what the
// heaviest lesson was measured to hold with no budget (peaksFile, embedded).
//
// Under a budget, turn is what the room adds for the exercise checks larger
// than it: they take the room's turn, one at a time (pgtest.TakeLargeTurn),
// so the largest of them adds its excess over one budget once.
func traineeConns() (conns int, said string, turn int) {
	if n, ok, err := workshopenv.ConnBudget(); err == nil && ok {
		return n, fmt.Sprintf("%d connections (%s, the harness's %d included) a trainee", n, workshopenv.MaxConns, workshopenv.HarnessConns),
			workshopenv.CheckExcess(n, workshopenv.LargestCheckPools)
	}
	peaks, err := parsePeaks(peakConnections)
	if err != nil {
		return 0, fmt.Sprintf("? connections a trainee (%v)", err), 0
	}
	top := heaviest(peaks)
	return top.peak, fmt.Sprintf("%d connections a trainee at most (lesson %d, the heaviest, measured with no budget: %s; %s caps it)", top.peak, top.n, peaksFile, workshopenv.MaxConns), 0
}

// fittingBudget returns the largest budget at which trainees fit in
// available connections, with the largest check's turn above it
// (workshopenv.CheckExcess), and never less than workshopenv.MinBudget.
func fittingBudget(available, trainees int) int {
	for n := available / max(1, trainees); n > workshopenv.MinBudget; n-- {
		if trainees*n+workshopenv.CheckExcess(n, workshopenv.LargestCheckPools) <= available {
			return n
		}
	}
	return workshopenv.MinBudget
}

// replicaReady connects to the room's replica and sees that it is one.
func replicaReady(ctx context.Context, url string) finding {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return finding{saw: fmt.Sprintf("%s=%s: %v", workshopenv.ReplicaURL, workshopenv.Redacted(url), err), fix: "start the room's replica (lessons/TRAINER.md, \"One replica for the room\")"}
	}
	defer conn.Close(context.Background())
	var standby bool
	var delay string
	if err := conn.QueryRow(ctx, `SELECT pg_is_in_recovery(), current_setting('recovery_min_apply_delay')`).Scan(&standby, &delay); err != nil || !standby {
		return finding{saw: fmt.Sprintf("%s=%s is not a standby", workshopenv.ReplicaURL, workshopenv.Redacted(url)), fix: "point " + workshopenv.ReplicaURL + " at a streaming replica of " + workshopenv.DatabaseURL}
	}
	if os.Getenv(workshopenv.ReplicaOwn) != "1" && delay != "0" {
		return finding{saw: fmt.Sprintf("the room's replica, %s, applies commits %s late", workshopenv.Redacted(url), delay),
			fix: "set the room's replica's recovery_min_apply_delay back to 0 (the trainer, on the replica): the harness changes nothing on it, and tests that need another delay skip"}
	}
	return finding{ready: true, saw: fmt.Sprintf("the room's replica, %s, is a standby applying commits %s late (the harness changes nothing on it)", workshopenv.Redacted(url), delay)}
}

func slicesContainsTrimmed(list []string, s string) bool {
	for _, x := range list {
		if strings.TrimSpace(x) == s {
			return true
		}
	}
	return false
}

// pgBouncer finds lesson 13's PgBouncer: a URL, or the binary the tests start.
func pgBouncer() finding {
	if url := os.Getenv(workshopenv.PgBouncerURL); url != "" {
		return finding{ready: true, saw: workshopenv.PgBouncerURL + " = " + workshopenv.Redacted(url)}
	}
	if path, err := exec.LookPath("pgbouncer"); err == nil {
		return finding{ready: true, saw: "the binary " + path + " (lesson 13 starts one per test binary)"}
	}
	return finding{saw: "no pgbouncer binary and no " + workshopenv.PgBouncerURL, fix: "apt-get install pgbouncer on every trainee's machine, or set " + workshopenv.PgBouncerURL}
}

// redisReady pings the room's Redis.
func redisReady(ctx context.Context) finding {
	url := os.Getenv(workshopenv.RedisURL)
	if url == "" {
		return finding{saw: workshopenv.RedisURL + " is not set", fix: "set " + workshopenv.RedisURL + " to the room's Redis (lesson 6), or install Docker on every trainee's machine"}
	}
	opt, err := redis.ParseURL(url)
	if err != nil {
		return finding{saw: fmt.Sprintf("%s: %v", workshopenv.RedisURL, err), fix: "correct " + workshopenv.RedisURL}
	}
	client := redis.NewClient(opt)
	defer client.Close()
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := client.Ping(ctx).Err(); err != nil {
		return finding{saw: fmt.Sprintf("%s: %v", workshopenv.Redacted(url), err), fix: "start the room's Redis, or correct " + workshopenv.RedisURL}
	}
	return finding{ready: true, saw: workshopenv.Redacted(url) + " answers"}
}

// freeDisk reads the free space of the repository's and the temporary
// directory's file systems.
func freeDisk(root string) finding {
	var least uint64
	var where string
	for _, dir := range []string{root, os.TempDir()} {
		var st syscall.Statfs_t
		if err := syscall.Statfs(dir, &st); err != nil {
			continue
		}
		if free := st.Bavail * uint64(st.Bsize); where == "" || free < least {
			least, where = free, dir
		}
	}
	if where == "" {
		return finding{ready: true, saw: "not measured on this system"}
	}
	saw := fmt.Sprintf("%.1f GiB free in %s", float64(least)/(1<<30), where)
	if least < minFreeDisk {
		return finding{saw: saw, fix: fmt.Sprintf("free %.0f GiB on every trainee's machine (build caches and lesson 18's replica)", float64(minFreeDisk)/(1<<30))}
	}
	return finding{ready: true, saw: saw}
}

// cacheWarm asks go list which packages of the workshop and its tests a
// build would still compile, with -race or without.
func (w *workshop) cacheWarm(ctx context.Context, race bool) finding {
	args := []string{"list", "-deps", "-test", "-f", "{{if .Stale}}{{.ImportPath}}{{end}}"}
	warm := "go test -count=1 -run '^$' ./..."
	if race {
		args = append(args[:1], append([]string{"-race"}, args[1:]...)...)
		warm = "go test -race -count=1 -run '^$' ./..."
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	out, err := w.run.run(ctx, w.root, "go", append(args, "./...")...)
	if err != nil {
		return finding{saw: fmt.Sprintf("go list: %v", err), fix: "run " + warm + " on every trainee's machine before the day"}
	}
	var deps, own int
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		switch {
		case line == "":
		case strings.HasPrefix(line, "works-vs-scales"):
			own++
		default:
			deps++
		}
	}
	if deps > 0 {
		return finding{saw: fmt.Sprintf("%d packages of Go and the modules not compiled yet (the long wait: minutes on 2 CPUs), %d of the workshop's", deps, own), fix: "run " + warm + " on every trainee's machine before the day"}
	}
	return finding{ready: true, saw: fmt.Sprintf("warm (%d of the workshop's own packages to compile, seconds)", own)}
}

// lookupDatabase returns WORKSHOP_DATABASE_URL, if it is set.
func lookupDatabase() (string, bool) {
	url := os.Getenv(workshopenv.DatabaseURL)
	return url, url != ""
}
