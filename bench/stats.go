package bench

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// Latencies summarises a sample of request latencies.
type Latencies struct {
	N                   int
	P50, P99, P999, Max time.Duration
	Mean                time.Duration
	sorted              []time.Duration
}

// Summarize sorts a copy of sample and computes its percentiles
// (nearest rank: the smallest value with at least p of the sample at or
// below it, so p99.9 of 1,000 values is the largest).
func Summarize(sample []time.Duration) Latencies {
	s := slices.Clone(sample)
	slices.Sort(s)
	l := Latencies{N: len(s), sorted: s}
	if len(s) == 0 {
		return l
	}
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	l.Mean = sum / time.Duration(len(s))
	l.P50, l.P99, l.P999 = l.Percentile(0.50), l.Percentile(0.99), l.Percentile(0.999)
	l.Max = s[len(s)-1]
	return l
}

// Percentile returns the nearest-rank percentile p (0 < p <= 1).
func (l Latencies) Percentile(p float64) time.Duration {
	if len(l.sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p*float64(len(l.sorted)))) - 1
	rank = max(0, min(rank, len(l.sorted)-1))
	return l.sorted[rank]
}

// String formats the percentiles in milliseconds.
func (l Latencies) String() string {
	return fmt.Sprintf("p50=%s p99=%s p99.9=%s max=%s (n=%d)", ms(l.P50), ms(l.P99), ms(l.P999), ms(l.Max), l.N)
}

// ms formats d in milliseconds with three decimals.
func ms(d time.Duration) string { return fmt.Sprintf("%.3fms", float64(d)/float64(time.Millisecond)) }

// Ms returns d in milliseconds.
func Ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
