package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// progressFile keeps the verdict of each exercise's last check.
const progressFile = "mine/progress.txt"

// A verdict is what an exercise's last check said, of which files, and when.
type verdict struct {
	solved bool
	hash   string    // filesHash of the exercise's folder when it was checked; "" if not recorded
	at     time.Time // when it was checked; zero if not recorded
}

// word is how the progress file writes the verdict.
func (v verdict) word() string {
	if v.solved {
		return "solved"
	}
	return "not-yet"
}

// progress reads the verdicts of the last checks. Each line of the file is
// "NN solved|not-yet HASH TIME"; a line it cannot read is left out.
func (w *workshop) progress() (map[int]verdict, error) {
	verdicts := map[int]verdict{}
	text, err := os.ReadFile(w.statePath())
	if errors.Is(err, os.ErrNotExist) {
		return verdicts, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read progress: %w", err)
	}
	for _, line := range strings.Split(string(text), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		n, err := strconv.Atoi(strings.TrimLeft(f[0], "0"))
		if err != nil {
			continue // a line a trainee typed: ignore it rather than fail
		}
		v := verdict{solved: f[1] == "solved"}
		if len(f) > 2 {
			v.hash = f[2]
		}
		if len(f) > 3 {
			v.at, _ = time.Parse(time.RFC3339, f[3])
		}
		verdicts[n] = v
	}
	return verdicts, nil
}

// standing is where the trainee stands: each exercise's last verdict, and
// whether it is stale (its files changed since, or were not recorded).
type standing struct {
	verdicts map[int]verdict
	stale    map[int]bool
}

// solved reports whether exercise n's last check passed on the files as they
// are now.
func (s standing) solved(n int) bool { return s.verdicts[n].solved && !s.stale[n] }

// standing reads the progress file and compares each verdict's hash with the
// exercise's files as they are.
func (w *workshop) standing() (standing, error) {
	verdicts, err := w.progress()
	if err != nil {
		return standing{}, err
	}
	exercises, err := w.exercises()
	if err != nil {
		return standing{}, err
	}
	s := standing{verdicts: verdicts, stale: map[int]bool{}}
	for _, e := range exercises {
		v, ok := verdicts[e.n]
		if !ok {
			continue
		}
		if v.hash == "" || v.hash != filesHash(filepath.Join(w.root, e.dir())) {
			s.stale[e.n] = true
		}
	}
	return s, nil
}

// record keeps the verdict of exercise n's check.
func (w *workshop) record(n int, v verdict) error {
	progress, err := w.progress()
	if err != nil {
		return err
	}
	progress[n] = v
	exercises, err := w.exercises()
	if err != nil {
		return err
	}
	var b strings.Builder
	b.WriteString("# written by go run ./cmd/workshop check: each exercise's last verdict, a hash of its files then, and when\n")
	for _, e := range exercises {
		v, ok := progress[e.n]
		if !ok {
			continue
		}
		hash, at := v.hash, "-"
		if hash == "" {
			hash = "-"
		}
		if !v.at.IsZero() {
			at = v.at.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(&b, "%02d %s %s %s\n", e.n, v.word(), hash, at)
	}
	path := w.statePath()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("record progress: %w", err)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("record progress: %w", err)
	}
	return nil
}

// filesHash returns a short hash of the names and contents of the files
// under dir: it changes when any of them does, and not when one is only
// saved again.
func filesHash(dir string) string {
	h := sha256.New()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		content, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		fmt.Fprintf(h, "%s\x00%d\x00", filepath.ToSlash(rel), len(content))
		h.Write(content)
		return nil
	})
	if err != nil {
		return "unreadable"
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}
