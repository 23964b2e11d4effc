package history

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestMonthsBetweenReturnsEachFirstInstant(t *testing.T) {
	nov := time.Date(2024, time.November, 1, 0, 0, 0, 0, time.UTC)
	months, err := MonthsBetween(nov, nov.AddDate(0, 3, 0))
	require.NoError(t, err)
	require.Equal(t, []time.Time{nov, nov.AddDate(0, 1, 0), nov.AddDate(0, 2, 0)}, months, "November to January, across the year")

	// The same instant in another zone is the same month.
	paris := time.FixedZone("Paris", 3600)
	months, err = MonthsBetween(nov.In(paris), nov.AddDate(0, 1, 0).In(paris))
	require.NoError(t, err)
	require.Equal(t, []time.Time{nov}, months)

	_, err = MonthsBetween(nov, nov.AddDate(0, MaxMonths+1, 0))
	require.ErrorIs(t, err, ErrRangeTooLong)
	_, err = MonthsBetween(nov, nov.AddDate(0, 0, 1))
	require.ErrorIs(t, err, ErrNotMonthStart)
	_, err = MonthsBetween(nov, nov)
	require.ErrorIs(t, err, ErrEmptyRange)
}

func TestMonthsBetweenKeepsToTheYears1To9999(t *testing.T) {
	dec := time.Date(9999, time.December, 1, 0, 0, 0, 0, time.UTC)
	months, err := MonthsBetween(dec, dec.AddDate(0, 1, 0))
	require.NoError(t, err, "December 9999, whose end is in the year 10000")
	require.Equal(t, []time.Time{dec}, months)
	_, err = MonthsBetween(dec, dec.AddDate(0, 2, 0))
	require.ErrorIs(t, err, ErrYearOutOfRange, "January 10000")
	_, err = MonthsBetween(dec.AddDate(0, 1, 0), dec.AddDate(0, 2, 0))
	require.ErrorIs(t, err, ErrYearOutOfRange)
	zeroDec := time.Date(0, time.December, 1, 0, 0, 0, 0, time.UTC) // 1 BC
	_, err = MonthsBetween(zeroDec, zeroDec.AddDate(0, 2, 0))
	require.ErrorIs(t, err, ErrYearOutOfRange, "December of the year 0")
}

func TestCheckRangeRefusesWhatOrdersPerDayWouldNotAnswer(t *testing.T) {
	jan := time.Date(2024, time.January, 1, 0, 0, 0, 0, time.UTC)
	require.NoError(t, CheckRange(jan, jan.AddDate(0, 0, MaxDays)))
	require.ErrorIs(t, CheckRange(jan, jan.AddDate(0, 0, MaxDays+1)), ErrRangeTooLong)
	require.ErrorIs(t, CheckRange(time.Time{}, jan), ErrZeroTime)
	require.ErrorIs(t, CheckRange(jan, jan), ErrEmptyRange)
}

func TestTimesOutsideTheYears1To9999AreRefused(t *testing.T) {
	end := time.Date(10000, time.January, 1, 0, 0, 0, 0, time.UTC)
	require.NoError(t, CheckMonthStart(end), "the end of December 9999")
	require.NoError(t, CheckRange(end.AddDate(0, 0, -7), end))
	for _, m := range []time.Time{end.AddDate(0, 1, 0), time.Date(0, time.December, 1, 0, 0, 0, 0, time.UTC), time.Date(-582_000, time.January, 1, 0, 0, 0, 0, time.UTC)} {
		require.ErrorIs(t, CheckMonthStart(m), ErrYearOutOfRange, "%v", m)
		require.ErrorIs(t, CheckRange(m, m.AddDate(0, 0, 7)), ErrYearOutOfRange, "%v", m)
	}
	// Out of range and too long: the year is what is wrong, not the length.
	ancient := time.Date(-582_000, time.January, 1, 0, 0, 0, 0, time.UTC)
	require.ErrorIs(t, CheckRange(ancient, time.Date(2024, time.January, 1, 0, 0, 0, 0, time.UTC)), ErrYearOutOfRange)
	require.ErrorIs(t, CheckRange(time.Date(2024, time.January, 1, 0, 0, 0, 0, time.UTC), end.AddDate(1, 0, 0)), ErrYearOutOfRange)
	_, err := UserOrdersPage(t.Context(), nil, 1, end.Add(time.Microsecond), 1, 10)
	require.ErrorIs(t, err, ErrYearOutOfRange, "checked before the database is asked")
}
