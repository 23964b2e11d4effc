// Dropdbs drops the databases the workshop's harness made on the server at
// $WORKSHOP_DATABASE_URL: every database named wvs_…, templates included, so
// the next run seeds afresh. It touches no other database.
//
// Usage:
//
//	go run ./cmd/dropdbs             # everything the harness made
//	go run ./cmd/dropdbs -leftovers  # only copies left by interrupted runs
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"works-vs-scales/internal/pgtest"
)

func main() {
	leftovers := flag.Bool("leftovers", false, "keep the seeded templates; drop only copies left by interrupted runs")
	flag.Parse()
	url := os.Getenv(pgtest.EnvDatabaseURL)
	if url == "" {
		fmt.Fprintf(os.Stderr, "dropdbs: set %s to the server to clean, e.g.\n  export %s='postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable'\n",
			pgtest.EnvDatabaseURL, pgtest.EnvDatabaseURL)
		os.Exit(2)
	}
	dropped, err := pgtest.DropDatabases(context.Background(), url, *leftovers)
	for _, name := range dropped {
		fmt.Println("dropped", name)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "dropdbs:", err)
		os.Exit(1)
	}
	if len(dropped) == 0 {
		fmt.Println("nothing to drop")
	}
}
