package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLessonsAreCurrent fails when a lesson's code or results no longer match
// the code and results files they are generated from.
func TestLessonsAreCurrent(t *testing.T) {
	stale, err := refresh("../..", false)
	require.NoError(t, err)
	assert.Empty(t, stale, "run: go run ./cmd/lessons")
}

func TestRenderCopiesTheDeclaration(t *testing.T) {
	root := t.TempDir()
	write(t, root, "pkg/add.go", "package pkg\n\n// Add returns a+b.\nfunc Add(a, b int) int { return a + b }\n\nfunc Sub(a, b int) int { return a - b }\n")
	lesson := "Intro.\n<!-- code: pkg/add.go Add -->\n```go\nstale\n```\n<!-- end -->\nOutro.\n"

	got, err := render(root, lesson, nil)
	require.NoError(t, err)
	assert.Equal(t, "Intro.\n<!-- code: pkg/add.go Add -->\n```go\n// Add returns a+b.\nfunc Add(a, b int) int { return a + b }\n```\n<!-- end -->\nOutro.\n", got)

	again, err := render(root, got, nil)
	require.NoError(t, err)
	assert.Equal(t, got, again, "a current lesson renders to itself")
}

func TestRenderCopiesAMethod(t *testing.T) {
	root := t.TempDir()
	write(t, root, "pkg/c.go", "package pkg\n\ntype C struct{}\n\n// Get gets.\nfunc (c *C) Get() int { return 1 }\n\nfunc Get() int { return 2 }\n")
	got, err := render(root, "<!-- code: pkg/c.go C.Get -->\n<!-- end -->", nil)
	require.NoError(t, err)
	assert.Contains(t, got, "// Get gets.\nfunc (c *C) Get() int { return 1 }")
	assert.NotContains(t, got, "return 2")
}

func TestRenderFailsOnAMissingDeclaration(t *testing.T) {
	root := t.TempDir()
	write(t, root, "pkg/add.go", "package pkg\n\nfunc Add(a, b int) int { return a + b }\n")
	_, err := render(root, "<!-- code: pkg/add.go Mul -->\n<!-- end -->", nil)
	assert.ErrorContains(t, err, "no declaration Mul")
}

func write(t *testing.T, root, path, text string) {
	t.Helper()
	full := filepath.Join(root, path)
	require.NoError(t, os.MkdirAll(filepath.Dir(full), 0o755))
	require.NoError(t, os.WriteFile(full, []byte(text), 0o644))
}
