package main

import (
	"bytes"
	"context"
	"image/png"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"works-vs-scales/internal/workshopenv"
)

// roomForTest points the room at a database of this test's own, under the
// engineer's prefix, and drops it when the test ends; it skips without a
// server.
func roomForTest(t *testing.T) {
	t.Helper()
	url, ok := lookupDatabase()
	if !ok {
		if os.Getenv("CI") == "true" {
			t.Fatal(workshopenv.DatabaseURL + " is not set")
		}
		t.Skip(workshopenv.DatabaseURL + " is not set")
	}
	name := workshopenv.Prefix() + "room_test"
	t.Setenv(workshopenv.RoomDatabase, name)
	drop := func() {
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, url)
		require.NoError(t, err)
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
		require.NoError(t, err)
	}
	t.Cleanup(drop)
	drop() // what an interrupted run left
}

// TestTheRoomShowsEachTraineesVerdicts: two trainees' checks (by prefix)
// write their verdicts to the room's table, made at the first; room lists
// each trainee's verdict of each exercise; a later check replaces the
// earlier one.
func TestTheRoomShowsEachTraineesVerdicts(t *testing.T) {
	roomForTest(t)
	ctx := context.Background()
	at := time.Date(2026, 12, 6, 9, 30, 0, 0, time.Local)
	for _, c := range []struct {
		prefix string
		n      int
		solved bool
	}{{"wvs_alice_", 12, false}, {"wvs_alice_", 12, true}, {"wvs_alice_", 13, false}, {"wvs_bob_", 12, false}} {
		t.Setenv(workshopenv.DBPrefix, c.prefix)
		at = at.Add(time.Minute)
		require.NoError(t, tellRoom(ctx, c.n, verdict{solved: c.solved, hash: "abc", at: at}))
	}
	w, out := newWorkshop(t, &fakeRunner{})
	require.NoError(t, w.main(ctx, []string{"room"}))
	text := out.String()
	lines := map[string]string{}
	for _, line := range strings.Split(text, "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			lines[f[0]] = line
		}
	}
	require.Contains(t, lines, "wvs_alice_", text)
	// A cell per exercise of the tree (12 solved, 13 not yet, the others
	// never checked), then where the trainee is.
	exercises, err := w.exercises()
	require.NoError(t, err)
	want := []string{"wvs_alice_"}
	for _, e := range exercises {
		want = append(want, map[int]string{12: "S", 13: "x"}[e.n])
		if want[len(want)-1] == "" {
			want[len(want)-1] = "."
		}
	}
	want = append(want, "13,", "not", "yet", "at", "09:33")
	require.Equal(t, want, strings.Fields(lines["wvs_alice_"]))
	require.Equal(t, "x", strings.Fields(lines["wvs_bob_"])[12], text)
}

// TestTheRoomPageInAHeadlessBrowser: the room's page, served as -serve
// serves it, rendered by Chromium: each trainee's cell of each exercise says
// its verdict, and a screenshot of the rendered cells shows a solved one
// green and one not yet red.
func TestTheRoomPageInAHeadlessBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium; skipped with -short")
	}
	browser, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("no chromium: apt-get install chromium")
		}
		t.Skip("no chromium")
	}
	roomForTest(t)
	ctx := context.Background()
	for prefix, solved := range map[string]bool{"wvs_alice_": true, "wvs_bob_": false} {
		t.Setenv(workshopenv.DBPrefix, prefix)
		require.NoError(t, tellRoom(ctx, 12, verdict{solved: solved, hash: "abc", at: time.Now()}))
	}
	srv := httptest.NewServer(roomHandler(mustExercises(t)))
	t.Cleanup(srv.Close)

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browser), chromedp.NoSandbox, chromedp.WindowSize(1400, 500),
		chromedp.UserDataDir(t.TempDir()))
	actx, cancel := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancel)
	bctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)

	// The first Run starts the browser and lives as long as bctx.
	require.NoError(t, chromedp.Do(bctx, chromedp.Navigate(srv.URL), chromedp.WaitVisible(chromedp.ID("room"))))
	text := func(id string) string {
		s, err := chromedp.Run(bctx, chromedp.Text(chromedp.ID(id)))
		require.NoError(t, err, id)
		return s
	}
	shot := func(id string) []byte {
		b, err := chromedp.Run(bctx, chromedp.Screenshot(chromedp.ID(id)))
		require.NoError(t, err, id)
		return b
	}
	alice, bob, none := text("wvs_alice_-12"), text("wvs_bob_-12"), text("wvs_alice_-13")
	refresh, err := chromedp.Run(bctx, chromedp.AttributeValue(chromedp.CSS("meta[http-equiv=refresh]"), "content"))
	require.NoError(t, err)
	page, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	require.NoError(t, err)
	solvedCell, notYetCell := shot("wvs_alice_-12"), shot("wvs_bob_-12")
	require.True(t, strings.HasPrefix(alice, "solved"), alice)
	require.True(t, strings.HasPrefix(bob, "not yet"), bob)
	require.Equal(t, "·", none)
	require.Equal(t, "5", refresh.Value, "the page reloads itself")
	require.NoError(t, os.WriteFile(filepath.Join(t.TempDir(), "room.png"), page, 0o644))
	full, err := png.Decode(bytes.NewReader(page))
	require.NoError(t, err)
	require.Greater(t, full.Bounds().Dx(), 1000, "the whole page was rendered")
	for cell, want := range map[string][]byte{"green": solvedCell, "red": notYetCell} {
		img, err := png.Decode(bytes.NewReader(want))
		require.NoError(t, err)
		b := img.Bounds()
		r, g, _, _ := img.At(b.Min.X+2, b.Min.Y+b.Dy()/2).RGBA() // the cell's background, left of its text
		if cell == "green" {
			require.Greater(t, g, r, "a solved cell is rendered green")
		} else {
			require.Greater(t, r, g, "a cell not yet solved is rendered red")
		}
	}
}
