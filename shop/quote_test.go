package shop_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// handQuoted matches the ways of quoting a caller's input by hand that Quote
// replaces: a precision on %q ("%.40q", which cuts without saying so) and
// strconv.Quote of a slice (a quoter of one's own).
var handQuoted = regexp.MustCompile(`%[-+# 0]*\d*\.\d+q|strconv\.Quote\([^)]*\[[^]]*:`)

// TestCallerInputIsQuotedOneWay: every message that quotes what a caller
// sent quotes it with shop.Quote, which cuts it at QuoteMax bytes and says
// how long it was; no Go file of the repository quotes by hand.
func TestCallerInputIsQuotedOneWay(t *testing.T) {
	root := ".."
	checked := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "mine" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || path == filepath.Join(root, "shop", "quote_test.go") {
			return nil
		}
		text, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		checked++
		for i, line := range strings.Split(string(text), "\n") {
			if m := handQuoted.FindString(line); m != "" {
				t.Errorf("%s:%d: %s quotes by hand: use shop.Quote\n\t%s", path, i+1, m, strings.TrimSpace(line))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 100 {
		t.Fatalf("checked %d Go files: not the repository", checked)
	}
}

func TestHandQuotedFindsWhatQuoteReplaces(t *testing.T) {
	for _, line := range []string{`fmt.Errorf("pay %.40q: %w", ref, err)`, `fmt.Sprintf("%-.10q", s)`, `return strconv.Quote(s[:most]) + "…"`} {
		if !handQuoted.MatchString(line) {
			t.Errorf("not caught: %s", line)
		}
	}
	for _, line := range []string{`fmt.Errorf("pay %s: %w", shop.Quote(ref), err)`, `fmt.Sprintf("%q", s)`, `strconv.Quote(s)`, `fmt.Sprintf("%.2f", x)`} {
		if handQuoted.MatchString(line) {
			t.Errorf("caught wrongly: %s", line)
		}
	}
}
