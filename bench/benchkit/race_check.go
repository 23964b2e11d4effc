package benchkit

import (
	"errors"
	"testing"
)

// ErrNeedsRace is what a check whose wrong answers include data races says
// when its test binary was built without -race: it gives no verdict, since
// only the race detector sees what requests at once do to the same memory.
var ErrNeedsRace = errors.New("this check runs under the race detector, which sees what requests at once do to the same memory: " +
	"run it with -race, as the lesson's command does (go run ./cmd/workshop check passes -race for this lesson)")

// RequireRace stops tb at once, failing it with ErrNeedsRace, unless the race
// detector is on. A lesson's TestExerciseNN calls it first when the lesson's
// command for its check says -race: the two say the same, and cmd/workshop
// reads the lesson's command.
func RequireRace(tb testing.TB) {
	tb.Helper()
	if !RaceEnabled {
		tb.Fatal(ErrNeedsRace)
	}
}

// RaceReported reports whether the race detector has reported a data race
// since tb's test began, which fails tb; it is always false without -race. A
// check calls it once the callers it ran at once have returned, where nothing
// else has failed tb (a check returns its findings as an error rather than
// failing tb), so that it can say in the lesson's words what the report
// printed above it shows.
func RaceReported(tb testing.TB) bool {
	// Failed asks the race detector for the reports made so far.
	return RaceEnabled && tb.Failed()
}
