package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// progressFile keeps the verdict of each exercise's last check.
const progressFile = "mine/progress.txt"

// progress reads which exercises the last checks found solved.
func (w *workshop) progress() (map[int]bool, error) {
	solved := map[int]bool{}
	text, err := os.ReadFile(w.statePath())
	if errors.Is(err, os.ErrNotExist) {
		return solved, nil
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
		solved[n] = f[1] == "solved"
	}
	return solved, nil
}

// record keeps the verdict of exercise n's check.
func (w *workshop) record(n int, solved bool) error {
	progress, err := w.progress()
	if err != nil {
		return err
	}
	progress[n] = solved
	exercises, err := w.exercises()
	if err != nil {
		return err
	}
	var b strings.Builder
	b.WriteString("# written by go run ./cmd/workshop check: the verdict of each exercise's last check\n")
	for _, e := range exercises {
		verdict, ok := progress[e.n]
		if !ok {
			continue
		}
		word := "not-yet"
		if verdict {
			word = "solved"
		}
		fmt.Fprintf(&b, "%02d %s\n", e.n, word)
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
