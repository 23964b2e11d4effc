package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"html/template"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"works-vs-scales/internal/workshopenv"
)

// roomTable is the room's table of verdicts, one row per trainee (their
// prefix) and exercise: the last check's.
const roomTable = `CREATE TABLE IF NOT EXISTS verdicts (
	prefix     text NOT NULL,
	exercise   int NOT NULL,
	solved     bool NOT NULL,
	hash       text NOT NULL,
	checked_at timestamptz NOT NULL,
	PRIMARY KEY (prefix, exercise)
)`

// roomDatabase returns the name of the room's database.
func roomDatabase() string {
	if name := os.Getenv(workshopenv.RoomDatabase); name != "" {
		return name
	}
	return workshopenv.DefaultRoomDatabase
}

// openRoom connects to the room's database on the server of
// WORKSHOP_DATABASE_URL, creating it and its table if they are missing; two
// trainees creating them at once is no error.
func openRoom(ctx context.Context) (*pgx.Conn, error) {
	url, ok := lookupDatabase()
	if !ok {
		return nil, fmt.Errorf("%s is not set: the room is kept on the shared server", workshopenv.DatabaseURL)
	}
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", workshopenv.DatabaseURL, err)
	}
	name := roomDatabase()
	room := cfg.Copy()
	room.Database = name
	conn, err := pgx.ConnectConfig(ctx, room)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "3D000" { // invalid_catalog_name: not made yet
		admin, adminErr := pgx.ConnectConfig(ctx, cfg)
		if adminErr != nil {
			return nil, fmt.Errorf("connect to make the room's database %s: %w", name, adminErr)
		}
		_, createErr := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
		admin.Close(context.Background())
		if createErr != nil && !(errors.As(createErr, &pgErr) && (pgErr.Code == "42P04" || pgErr.Code == "23505")) { // made by another trainee meanwhile
			return nil, fmt.Errorf("make the room's database %s: %w", name, createErr)
		}
		conn, err = pgx.ConnectConfig(ctx, room)
	}
	if err != nil {
		return nil, fmt.Errorf("connect to the room's database %s: %w", name, err)
	}
	if _, err := conn.Exec(ctx, roomTable); err != nil && !(errors.As(err, &pgErr) && (pgErr.Code == "42P07" || pgErr.Code == "23505")) {
		conn.Close(context.Background())
		return nil, fmt.Errorf("make the room's table in %s: %w", name, err)
	}
	return conn, nil
}

// tellRoom writes exercise n's verdict to the room's table, under this
// trainee's prefix. It is best effort: a room that cannot be reached leaves
// the trainee's own verdict as it is.
func tellRoom(ctx context.Context, n int, v verdict) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := openRoom(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	const upsert = `INSERT INTO verdicts (prefix, exercise, solved, hash, checked_at) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (prefix, exercise) DO UPDATE SET solved = excluded.solved, hash = excluded.hash, checked_at = excluded.checked_at`
	if _, err := conn.Exec(ctx, upsert, workshopenv.Prefix(), n, v.solved, v.hash, v.at); err != nil {
		return fmt.Errorf("write exercise %d's verdict to the room: %w", n, err)
	}
	return nil
}

// A roomRow is one trainee's verdicts, by exercise.
type roomRow struct {
	Prefix   string
	Verdicts map[int]verdict
}

// readRoom returns every trainee's verdicts, by prefix.
func readRoom(ctx context.Context, conn *pgx.Conn) ([]roomRow, error) {
	const query = `SELECT prefix, exercise, solved, hash, checked_at FROM verdicts ORDER BY prefix, exercise`
	rows, err := conn.Query(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("read the room: %w", err)
	}
	var room []roomRow
	for rows.Next() {
		var prefix string
		var n int
		var v verdict
		if err := rows.Scan(&prefix, &n, &v.solved, &v.hash, &v.at); err != nil {
			return nil, fmt.Errorf("read the room: %w", err)
		}
		if len(room) == 0 || room[len(room)-1].Prefix != prefix {
			room = append(room, roomRow{Prefix: prefix, Verdicts: map[int]verdict{}})
		}
		room[len(room)-1].Verdicts[n] = v
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the room: %w", err)
	}
	return room, nil
}

// room prints every trainee's verdict of each exercise and when, or with
// -serve ADDR serves it as a page that refreshes itself.
func (w *workshop) room(ctx context.Context, args []string) error {
	flags := flag.NewFlagSet("room", flag.ContinueOnError)
	flags.SetOutput(w.out)
	serve := flags.String("serve", "", "serve the room as a web page at this address, e.g. 127.0.0.1:8099")
	if err := flags.Parse(args); err != nil {
		return fmt.Errorf("room: %w", errUsage)
	}
	exercises, err := w.exercises()
	if err != nil {
		return err
	}
	if *serve != "" {
		fmt.Fprintf(w.out, "The room, from %s on the shared server: http://%s/ (Ctrl-C to stop)\n", roomDatabase(), *serve)
		srv := &http.Server{Addr: *serve, Handler: roomHandler(exercises), ReadHeaderTimeout: 5 * time.Second}
		go func() { <-ctx.Done(); srv.Close() }()
		if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serve the room at %s: %w", *serve, err)
		}
		return nil
	}
	conn, err := openRoom(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	room, err := readRoom(ctx, conn)
	if err != nil {
		return err
	}
	fmt.Fprintf(w.out, "The room (%s): each trainee's last check of each exercise; S solved, x not yet, . not checked\n\n", roomDatabase())
	fmt.Fprintf(w.out, "  %-24s", "trainee (prefix)")
	for _, e := range exercises {
		fmt.Fprintf(w.out, " %2d", e.n)
	}
	fmt.Fprintln(w.out, "  last check")
	for _, r := range room {
		fmt.Fprintf(w.out, "  %-24s", r.Prefix)
		var last verdict
		lastN := 0
		for _, e := range exercises {
			v, ok := r.Verdicts[e.n]
			mark := "."
			if ok {
				mark = "x"
				if v.solved {
					mark = "S"
				}
				if v.at.After(last.at) {
					last, lastN = v, e.n
				}
			}
			fmt.Fprintf(w.out, " %2s", mark)
		}
		fmt.Fprintf(w.out, "  %d, %s at %s\n", lastN, strings.ReplaceAll(last.word(), "-", " "), last.at.Local().Format("15:04"))
	}
	if len(room) == 0 {
		fmt.Fprintln(w.out, "  (no check has reported yet)")
	}
	return nil
}

// A roomView is the room as the page shows it.
type roomView struct {
	Exercises []int
	Rows      []roomViewRow
	At        string
}

type roomViewRow struct {
	Prefix string
	Cells  []roomViewCell
}

type roomViewCell struct {
	ID, Class, Text, At string
}

// view lays the room out for the page: a row per trainee, a cell per
// exercise.
func view(exercises []exercise, room []roomRow, now time.Time) roomView {
	v := roomView{At: now.Local().Format("15:04:05")}
	for _, e := range exercises {
		v.Exercises = append(v.Exercises, e.n)
	}
	for _, r := range room {
		row := roomViewRow{Prefix: r.Prefix}
		for _, e := range exercises {
			c := roomViewCell{ID: fmt.Sprintf("%s-%d", r.Prefix, e.n), Class: "none", Text: "·"}
			if got, ok := r.Verdicts[e.n]; ok {
				c.Class, c.Text, c.At = "notyet", "not yet", got.at.Local().Format("15:04")
				if got.solved {
					c.Class, c.Text = "solved", "solved"
				}
			}
			row.Cells = append(row.Cells, c)
		}
		v.Rows = append(v.Rows, row)
	}
	return v
}

// roomPage is the room as a web page: a table of trainees by exercises that
// reloads itself every few seconds.
var roomPage = template.Must(template.New("room").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="5">
<title>works-vs-scales: the room</title>
<style>
body { font-family: sans-serif; margin: 1.5em; }
table { border-collapse: collapse; }
th, td { border: 1px solid #999; padding: 0.3em 0.5em; text-align: center; min-width: 3.5em; }
td.solved { background: #2e9d45; color: #fff; }
td.notyet { background: #d9534f; color: #fff; }
td.none { background: #eee; color: #999; }
</style></head>
<body>
<h1>The room</h1>
<p>Each trainee's last check of each exercise, and when. Read at {{.At}}; the page reloads every 5 s.</p>
<table id="room">
<tr><th>trainee</th>{{range .Exercises}}<th>{{.}}</th>{{end}}</tr>
{{range .Rows}}<tr><th class="prefix">{{.Prefix}}</th>{{range .Cells}}<td id="{{.ID}}" class="{{.Class}}">{{.Text}}{{if .At}}<br><small>{{.At}}</small>{{end}}</td>{{end}}</tr>
{{else}}<tr><td colspan="99">No check has reported yet.</td></tr>{{end}}
</table>
</body></html>
`))

// roomHandler serves the room's page, read from the server at each request.
func roomHandler(exercises []exercise) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(rw, r)
			return
		}
		conn, err := openRoom(r.Context())
		if err != nil {
			http.Error(rw, err.Error(), http.StatusServiceUnavailable)
			return
		}
		defer conn.Close(context.Background())
		room, err := readRoom(r.Context(), conn)
		if err != nil {
			http.Error(rw, err.Error(), http.StatusServiceUnavailable)
			return
		}
		rw.Header().Set("Content-Type", "text/html; charset=utf-8")
		if err := roomPage.Execute(rw, view(exercises, room, time.Now())); err != nil {
			http.Error(rw, err.Error(), http.StatusInternalServerError)
		}
	})
}
