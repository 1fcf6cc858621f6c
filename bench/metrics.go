package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Metric names the harness reads from a process under test.
const (
	// MetricMallocs counts heap objects allocated since the process started.
	MetricMallocs = "go_memstats_mallocs_total"
	// MetricCPU is the process's user and system CPU time, in seconds.
	MetricCPU = "process_cpu_seconds_total"
	// MetricHeapInuse is the bytes of in-use heap spans.
	MetricHeapInuse = "go_memstats_heap_inuse_bytes"
)

// ParseMetrics reads Prometheus text exposition and returns every sample's
// value keyed by its series as written: `name` or `name{label="v",...}`.
// Comments and timestamps are skipped.
func ParseMetrics(r io.Reader) (map[string]float64, error) {
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		series, rest := line, ""
		if i := strings.LastIndexByte(line, '}'); i >= 0 {
			series, rest = line[:i+1], line[i+1:]
		} else if i := strings.IndexByte(line, ' '); i >= 0 {
			series, rest = line[:i], line[i:]
		}
		f := strings.Fields(rest)
		if len(f) < 1 {
			return nil, fmt.Errorf("metrics line %d: want SERIES VALUE, got %q", n, line)
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return nil, fmt.Errorf("metrics line %d: %s: %v", n, series, err)
		}
		out[series] = v
	}
	return out, sc.Err()
}

// Sum adds the values of every series of the family name whose labels
// contain each of the given `label="value"` pairs.
func Sum(m map[string]float64, name string, labels ...string) float64 {
	var total float64
	for series, v := range m {
		rest, ok := strings.CutPrefix(series, name)
		if !ok || (rest != "" && rest[0] != '{') {
			continue
		}
		match := true
		for _, l := range labels {
			if !strings.Contains(rest, l) {
				match = false
				break
			}
		}
		if match {
			total += v
		}
	}
	return total
}

// Scrape fetches url (a /metrics endpoint) and parses it.
func Scrape(ctx context.Context, url string) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s answered %s", url, resp.Status)
	}
	m, err := ParseMetrics(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", url, err)
	}
	return m, nil
}

// Mallocs returns the process's allocation count from its metrics.
func Mallocs(ctx context.Context, url string) (float64, error) {
	m, err := Scrape(ctx, url)
	if err != nil {
		return 0, err
	}
	v, ok := m[MetricMallocs]
	if !ok {
		return 0, fmt.Errorf("%s has no %s", url, MetricMallocs)
	}
	return v, nil
}
