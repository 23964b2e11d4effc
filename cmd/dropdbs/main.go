// Dropdbs drops the databases the workshop's harness made on the server at
// $WORKSHOP_DATABASE_URL, named $WORKSHOP_DB_PREFIX… (default wvs_…), and
// never one a live run uses: a live run's copies, or a template a live run
// copies; and the login roles and replication slots of ended runs (named
// like their copies). A run counts as ended only when its lock is free and
// no session of it is open (none carries its application_name,
// <prefix>run_<id>, none is on its copies or logs in as its roles). It
// touches no other database, role or slot.
//
// Usage:
//
//	go run ./cmd/dropdbs             # everything no live run uses, templates included
//	go run ./cmd/dropdbs -leftovers  # only copies of ended runs and superseded templates
//	go run ./cmd/dropdbs -n          # say what would be dropped, drop nothing
//	go run ./cmd/dropdbs -legacy     # also copies named by an older harness, if no session is on them
//
// Every run already drops at its start what ended runs left under its prefix,
// so -leftovers is rarely needed.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"works-vs-scales/internal/pgtest"
	"works-vs-scales/internal/workshopenv"
)

func main() {
	leftovers := flag.Bool("leftovers", false, "keep the current templates; drop only copies of ended runs and superseded templates")
	dryRun := flag.Bool("n", false, "dry run: say what would be dropped, drop nothing")
	legacy := flag.Bool("legacy", false, "also drop copies named by an older harness (by process id) that no session is on")
	prefix := flag.String("prefix", "", "the prefix of the databases to consider (default $"+workshopenv.DBPrefix+", else "+workshopenv.DefaultPrefix+")")
	flag.Parse()
	url := os.Getenv(workshopenv.DatabaseURL)
	if url == "" {
		fmt.Fprintf(os.Stderr, "dropdbs: set %s to the server to clean, e.g.\n  export %s='postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable'\n",
			workshopenv.DatabaseURL, workshopenv.DatabaseURL)
		os.Exit(2)
	}
	verdicts, err := pgtest.DropDatabases(context.Background(), url, pgtest.DropOptions{
		Prefix: *prefix, Templates: !*leftovers, Legacy: *legacy, DryRun: *dryRun,
	})
	dropped := 0
	for _, v := range verdicts {
		action := "kept"
		switch {
		case v.Dropped && *dryRun:
			action = "would drop"
		case v.Dropped:
			action = "dropped"
		}
		if v.Dropped {
			dropped++
		}
		fmt.Printf("%s %s: %s\n", action, v.Name, v.Reason)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "dropdbs:", err)
		os.Exit(1)
	}
	if dropped == 0 {
		fmt.Println("nothing to drop")
	}
}
