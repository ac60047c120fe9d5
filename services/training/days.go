package training

import (
	"math/bits"
	"time"

	"github.com/knk-id/knk/internal/idn"
)

// maxDays is the longest session in days: attendance is a bit per day.
const maxDays = 62

// sessionDays lists the days (YYYY-MM-DD) of a session held in province from
// start to end, in the province's legal time: from the day of start to the day
// of the last instant before end.
func sessionDays(province string, start, end time.Time) []string {
	loc := idn.Zone(province)
	first := start.In(loc)
	last := end.Add(-time.Microsecond).In(loc)
	var out []string
	for d := time.Date(first.Year(), first.Month(), first.Day(), 0, 0, 0, 0, loc); !d.After(last) && len(out) <= maxDays; d = d.AddDate(0, 0, 1) {
		out = append(out, d.Format(time.DateOnly))
	}
	return out
}

// allDays is the attendance mask of every one of n days.
func allDays(n int) int64 { return int64(1)<<n - 1 }

// presentDays lists the days of mask among days.
func presentDays(days []string, mask int64) []string {
	out := []string{}
	for i, d := range days {
		if mask&(1<<i) != 0 {
			out = append(out, d)
		}
	}
	return out
}

// credited reports whether attendance on mask of n days reaches threshold
// percent; attended (present every day, as recorded before daily attendance)
// always does.
func credited(attended bool, mask int64, n int, threshold int32) bool {
	if attended || n == 0 {
		return attended
	}
	return int64(bits.OnesCount64(uint64(mask)))*100 >= int64(threshold)*int64(n)
}
