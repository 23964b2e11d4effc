package main

import (
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// sentences splits prose into sentences, roughly: at paragraph breaks, and
// at a period followed by a space.
func sentences(text string) []string {
	var out []string
	for _, para := range regexp.MustCompile(`\n\s*\n`).Split(text, -1) {
		flat := strings.Join(strings.Fields(para), " ")
		for s := range strings.SplitSeq(flat, ". ") {
			if s = strings.TrimSpace(s); s == "" {
				continue
			}
			if !strings.ContainsAny(s[len(s)-1:], ".:!?") {
				s += "."
			}
			out = append(out, s)
		}
	}
	return out
}

// hint prints exercise n's hint at stage: 1 is what the lesson says about it,
// 2 a nudge. No stage gives the answer.
func (w *workshop) hint(n, stage int) error {
	e, err := w.exercise(n)
	if err != nil {
		return err
	}
	switch stage {
	case 1:
		d, err := readDoc(filepath.Join(w.root, e.lesson))
		if err != nil {
			return err
		}
		fmt.Fprintf(w.out, "Hint 1 for %s: what the lesson says.\n\n", d.shortTitle())
		if why, ok := d.section("Why it breaks"); ok {
			fmt.Fprintln(w.out, "Why it breaks:\n\n"+indent(prose(why)))
		}
		if task, ok := d.section("Exercise"); ok {
			fmt.Fprintln(w.out, "\nThe exercise:\n\n"+indent(prose(task)))
		}
		fmt.Fprintf(w.out, "\nStill stuck? go run ./cmd/workshop hint %d 2\n", n)
	case 2:
		fmt.Fprintf(w.out, "Hint 2 for %s: a nudge.\n\n%s\n", w.title(e), indent(wrap(e.nudge, 88)))
		fmt.Fprintf(w.out, "\nThat is the last hint: the lesson's scales version does the same for its own problem; read it, then write yours.\n")
	default:
		return fmt.Errorf("hint stage %d: there are two (1: the lesson, 2: a nudge): %w", stage, errUsage)
	}
	return nil
}

// answer matches a sentence that points at an answer, which hints leave out.
var answer = regexp.MustCompile(`One answer is`)

// prose returns a section's text without its code blocks, links' targets,
// "Next:" line or the sentence that points at an answer.
func prose(text string) string {
	var items []string
	var cur []string
	flush := func() {
		var keep []string
		for _, s := range sentences(strings.Join(cur, " ")) {
			if !answer.MatchString(s) {
				keep = append(keep, plain(s))
			}
		}
		if len(keep) > 0 {
			items = append(items, wrap(strings.Join(keep, " "), 88))
		}
		cur = nil
	}
	for _, line := range strings.Split(withoutCode(htmlComment.ReplaceAllString(text, "")), "\n") {
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "- ") || strings.HasPrefix(line, "|") {
			flush()
		}
		if strings.HasPrefix(line, "|") { // a table: leave it to the lesson
			continue
		}
		cur = append(cur, line)
	}
	flush()
	return strings.Join(items, "\n")
}

// withoutCode returns markdown without its code blocks, generated parts'
// markers and "Next:" line.
func withoutCode(text string) string {
	var keep []string
	fence := false
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "```") {
			fence = !fence
			continue
		}
		if fence || strings.HasPrefix(line, "Next:") || strings.HasPrefix(line, "<!--") {
			continue
		}
		keep = append(keep, line)
	}
	return strings.Join(keep, "\n")
}

// htmlComment is a comment of a lesson's markdown, a generated figure's
// markers included (the figure between them stays).
var htmlComment = regexp.MustCompile(`(?s)<!--.*?-->`)

// emphasis is markdown's bold, italic and code spans.
var emphasis = regexp.MustCompile("\\*\\*|`|\\*([^*\\s][^*]*)\\*")

// plain returns a sentence of markdown as plain prose: links' text without
// their targets, and no emphasis or code marks.
func plain(s string) string {
	return emphasis.ReplaceAllStringFunc(stripLinks(s), func(m string) string {
		return strings.Trim(m, "*`")
	})
}

var link = regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`)

// stripLinks keeps a markdown link's text and drops its target.
func stripLinks(s string) string { return link.ReplaceAllString(s, "$1") }

// wrap breaks text into lines of at most width bytes, at spaces.
func wrap(text string, width int) string {
	var b strings.Builder
	n := 0
	for _, word := range strings.Fields(text) {
		if n > 0 && n+1+len(word) > width {
			b.WriteString("\n")
			n = 0
		} else if n > 0 {
			b.WriteString(" ")
			n++
		}
		b.WriteString(word)
		n += len(word)
	}
	return b.String()
}

// indent puts two spaces before every line of text.
func indent(text string) string {
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	for i, l := range lines {
		lines[i] = "  " + l
	}
	return strings.Join(lines, "\n")
}

// tail returns the last n lines of text.
func tail(text string, n int) string {
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// quoteArgs quotes the arguments a shell would need quoted, for display.
func quoteArgs(args []string) []string {
	out := slices.Clone(args)
	for i, a := range out {
		if strings.ContainsAny(a, "^$|*") {
			out[i] = "'" + a + "'"
		}
	}
	return out
}
