//go:build race

package benchkit

// RaceEnabled says whether the race detector is on: a wrong answer whose
// failure is a data race is then left to it.
const RaceEnabled = true
