package main

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/nodeclass-guard/nodeclass-guard/bench"
)

// poolSize is the warm targets' idle-connection pool: above every load
// level, so that no request of a warm run opens a connection.
const poolSize = 256

// measured is one target's figures at one load level.
type measured struct {
	lat          bench.Latencies
	throughput   float64 // requests per second
	cpuPerReq    time.Duration
	allocsPerReq float64
}

// level is one load level: every target's figures.
type level struct {
	name                 string
	serve, trivial, noop measured
}

type warmResult struct {
	levels   []level
	refIndex int // the level the figures line uses: closed loop at 16
	rss      bench.Memory
	openRate float64
}

// account accumulates a target's runs and resource use at one level.
type account struct {
	t          *bench.Target
	scrapeCost float64 // allocations of one /metrics scrape, subtracted
	run        bench.Run
	cpu        time.Duration
	mallocs    float64
}

// window runs load against a.t and adds its latencies, CPU time and
// allocations to a.
func (a *account) window(ctx context.Context, load func() bench.Run) error {
	cpu0, err := bench.CPUTime(a.t.PID)
	if err != nil {
		return err
	}
	m0, err := bench.Mallocs(ctx, a.t.MetricsURL)
	if err != nil {
		return err
	}
	run := load()
	cpu1, err := bench.CPUTime(a.t.PID)
	if err != nil {
		return err
	}
	m1, err := bench.Mallocs(ctx, a.t.MetricsURL)
	if err != nil {
		return err
	}
	if err := run.Failed(); err != nil {
		return fmt.Errorf("%s: %w", a.t.Name, err)
	}
	a.run.Merge(run)
	a.cpu += cpu1 - cpu0
	a.mallocs += m1 - m0 - a.scrapeCost
	return nil
}

func (a *account) measured() measured {
	n := float64(len(a.run.Latencies))
	return measured{
		lat:          bench.Summarize(a.run.Latencies),
		throughput:   a.run.Throughput(),
		cpuPerReq:    time.Duration(float64(a.cpu) / n),
		allocsPerReq: math.Max(0, a.mallocs/n),
	}
}

// scrapeCost measures the allocations one /metrics scrape makes in the
// target (the median of five idle scrapes).
func scrapeCost(ctx context.Context, t *bench.Target) (float64, error) {
	prev, err := bench.Mallocs(ctx, t.MetricsURL)
	if err != nil {
		return 0, err
	}
	var d []float64
	for range 5 {
		m, err := bench.Mallocs(ctx, t.MetricsURL)
		if err != nil {
			return 0, err
		}
		d = append(d, m-prev)
		prev = m
	}
	slices.Sort(d)
	return d[len(d)/2], nil
}

// warmScenario compares serve, its IAM cache warm, with the trivial
// webhook: closed loop at each concurrency level and open loop at a fixed
// rate, the two targets alternating round by round so that drift of the
// machine (other processes, frequency scaling) falls on both alike.
func (h *harness) warmScenario(ctx context.Context) (warmResult, error) {
	var res warmResult
	serve, serveProc, err := h.startServe(ctx, "serve-warm", poolSize, h.c.serveProfile != "")
	if err != nil {
		return res, err
	}
	trivial, trivialProc := h.trivial, h.trivialProc
	noop, noopProc := h.noop, h.noopProc
	reqs := requests(classes("warm", h.c.warmClasses))
	h.logf("warm: serve (pid %d), trivial (pid %d) and no-op validator (pid %d) ready; %d classes, role %s; filling the IAM cache", serve.PID, trivial.PID, noop.PID, len(reqs), nodeRole)
	for _, r := range reqs {
		if _, err := serve.Do(ctx, r, time.Now()); err != nil {
			return res, err
		}
	}
	maxConc := slices.Max(h.c.conc)
	for _, t := range []*bench.Target{serve, trivial, noop} {
		// Open the connections and let both heaps reach their working size.
		if err := bench.ClosedLoop(ctx, t, reqs, maxConc, 500*time.Millisecond).Failed(); err != nil {
			return res, fmt.Errorf("%s warm-up: %w", t.Name, err)
		}
	}
	costs := map[*bench.Target]float64{}
	for _, t := range []*bench.Target{serve, trivial, noop} {
		if costs[t], err = scrapeCost(ctx, t); err != nil {
			return res, err
		}
	}

	levelOf := func(name string, load func(t *bench.Target) bench.Run) (level, error) {
		s := &account{t: serve, scrapeCost: costs[serve]}
		tr := &account{t: trivial, scrapeCost: costs[trivial]}
		no := &account{t: noop, scrapeCost: costs[noop]}
		for round := range h.c.rounds {
			// Each target takes each place in turn, round by round.
			order := []*account{tr, no, s}
			for range round % len(order) {
				order = append(order[1:], order[0])
			}
			if round%2 == 1 {
				slices.Reverse(order)
			}
			for _, a := range order {
				if err := a.window(ctx, func() bench.Run { return load(a.t) }); err != nil {
					return level{}, err
				}
			}
			for _, p := range []*bench.Process{serveProc, trivialProc, noopProc} {
				if err := p.Alive(); err != nil {
					return level{}, err
				}
			}
		}
		l := level{name: name, serve: s.measured(), trivial: tr.measured(), noop: no.measured()}
		h.logf("warm %-16s serve   %s  %7.0f req/s  cpu %s/req  %5.0f allocs/req", name, l.serve.lat, l.serve.throughput, l.serve.cpuPerReq, l.serve.allocsPerReq)
		h.logf("warm %-16s trivial %s  %7.0f req/s  cpu %s/req  %5.0f allocs/req", name, l.trivial.lat, l.trivial.throughput, l.trivial.cpuPerReq, l.trivial.allocsPerReq)
		h.logf("warm %-16s no-op   %s  %7.0f req/s  cpu %s/req  %5.0f allocs/req", name, l.noop.lat, l.noop.throughput, l.noop.cpuPerReq, l.noop.allocsPerReq)
		return l, nil
	}

	res.refIndex = -1
	for _, c := range h.c.conc {
		l, err := levelOf(fmt.Sprintf("closed c=%d", c), func(t *bench.Target) bench.Run {
			if t == serve && c == 16 && serve.PprofURL != "" {
				return h.profiled(ctx, serve, h.c.serveProfile, h.c.roundTime, func() bench.Run { return bench.ClosedLoop(ctx, t, reqs, c, h.c.roundTime) })
			}
			return bench.ClosedLoop(ctx, t, reqs, c, h.c.roundTime)
		})
		if err != nil {
			return res, err
		}
		if c == 16 || res.refIndex < 0 {
			res.refIndex = len(res.levels)
		}
		res.levels = append(res.levels, l)
	}

	res.openRate = h.c.openRate
	if res.openRate <= 0 {
		// Half of what the slower target sustains at concurrency 16 (or the
		// reference level): both run well below saturation, where latency
		// is the service time plus queueing that open-loop load exposes.
		ref := res.levels[res.refIndex]
		res.openRate = math.Max(100, math.Floor(math.Min(ref.serve.throughput, ref.trivial.throughput)/2/100)*100)
	}
	l, err := levelOf(fmt.Sprintf("open %.0f/s", res.openRate), func(t *bench.Target) bench.Run {
		return bench.OpenLoop(ctx, t, reqs, res.openRate, h.c.openTime, poolSize)
	})
	if err != nil {
		return res, err
	}
	res.levels = append(res.levels, l)

	if res.rss, err = bench.ReadMemory(serve.PID); err != nil {
		return res, err
	}
	h.logf("warm: serve after the warm runs: %s", res.rss)
	serve.Client.CloseIdleConnections()
	trivial.Client.CloseIdleConnections()
	noop.Client.CloseIdleConnections()
	return res, serveProc.Stop(10 * time.Second)
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// profiled runs load while serve records a CPU profile for d (whole
// seconds), written to path (path.1, path.2... when it exists; `go tool
// pprof` merges them).
func (h *harness) profiled(ctx context.Context, serve *bench.Target, path string, d time.Duration, load func() bench.Run) bench.Run {
	secs := max(1, int(d.Seconds()))
	done := make(chan error, 1)
	go func() { done <- fetchProfile(ctx, serve.PprofURL, secs, path) }()
	time.Sleep(50 * time.Millisecond) // the profile starts before the load
	run := load()
	if err := <-done; err != nil {
		h.logf("warm: serve profile: %v", err)
	}
	return run
}
