package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/nodeclass-guard/nodeclass-guard/bench"
)

// memoryProfile is the instance profile every memory-scenario class names.
// A class naming spec.instanceProfile asks three class-specific questions
// (the launch permissions, tagged with its name) where spec.role asks six:
// the cache entries are the same kind, and half the IAM calls keep the
// scenario inside the time budget.
const memoryProfile = "KarpenterNodeInstanceProfile-demo"

type memPoint struct {
	label     string
	classes   int
	mem       bench.Memory
	heapInuse float64
}

type memResult struct {
	points    []memPoint
	classes   int
	elapsed   time.Duration
	iamCalls  int
	cacheSize int
	perClass  int // distinct questions one more class adds

	serveCPU, harnessCPU time.Duration
	wrong                int // admissions not allowed (IAMUnavailable)
	firstWrong           error
}

func (m memResult) maxRSSMiB() float64 {
	var top int64
	for _, p := range m.points {
		top = max(top, p.mem.RSS)
	}
	return mib(top)
}

// memoryScenario passes distinct classes through a fresh serve (IAM
// latency 0), each naming a class never seen before, so that every
// admission adds entries to the IAM cache: its resident memory is read
// idle, once the cache has reached its bound, and at checkpoints up to the
// last class. A bounded cache keeps it flat.
func (h *harness) memoryScenario(ctx context.Context) (memResult, error) {
	res := memResult{classes: h.c.memoryClasses, cacheSize: h.c.cacheSize}
	serve, proc, err := h.startServe(ctx, "serve-memory", h.c.memoryConcurrency, h.c.heapProfile != "")
	if err != nil {
		return res, err
	}
	chk, err := h.checker(ctx)
	if err != nil {
		return res, err
	}
	one := total(bench.DistinctQuestions(ctx, chk, []bench.Class{{Name: "a", InstanceProfile: memoryProfile}}))
	two := total(bench.DistinctQuestions(ctx, chk, []bench.Class{{Name: "a", InstanceProfile: memoryProfile}, {Name: "b", InstanceProfile: memoryProfile}}))
	perClass := max(two-one, 1)
	res.perClass = perClass
	body := bench.ReviewBodies(bench.Class{InstanceProfile: memoryProfile})
	next := func(i int) bench.Request {
		return bench.Request{Body: body(fmt.Sprintf("mem-%06d", i)), Allowed: true, Check: true}
	}
	point := func(label string, classes int) error {
		mem, err := bench.ReadMemory(serve.PID)
		if err != nil {
			return err
		}
		m, err := bench.Scrape(ctx, serve.MetricsURL)
		if err != nil {
			return err
		}
		p := memPoint{label: label, classes: classes, mem: mem, heapInuse: m[bench.MetricHeapInuse]}
		res.points = append(res.points, p)
		if h.c.heapProfile != "" {
			url := strings.TrimSuffix(serve.PprofURL, "/profile") + "/heap"
			if err := fetchURL(ctx, url, h.c.heapProfile); err != nil {
				h.logf("memory: heap profile: %v", err)
			}
		}
		h.logf("memory: %-22s %7d classes  %s  heap in use %5.1f MiB", label, classes, mem, p.heapInuse/(1<<20))
		return nil
	}
	if err := point("idle, cache empty", 0); err != nil {
		return res, err
	}

	// The class count at which the cache is certainly at its bound: twice
	// what fills it from empty.
	full := min(2*((h.c.cacheSize+perClass-1)/perClass), res.classes)
	checkpoints := []int{full}
	for _, q := range []int{4, 2, 1} {
		if n := res.classes / q; n > checkpoints[len(checkpoints)-1] {
			checkpoints = append(checkpoints, n)
		}
	}
	h.iam.ResetCalls()
	serveCPU0, err := bench.CPUTime(serve.PID)
	if err != nil {
		return res, err
	}
	selfCPU0, err := bench.CPUTime(os.Getpid())
	if err != nil {
		return res, err
	}
	start := time.Now()
	done := 0
	for i, cp := range checkpoints {
		from := done
		run := bench.Sequence(ctx, serve, cp-from, h.c.memoryConcurrency, func(i int) bench.Request { return next(from + i) })
		if run.Errors > 0 {
			return res, fmt.Errorf("%d failed admissions; first: %v", run.Errors, run.FirstErr)
		}
		// An IAMUnavailable denial (IAM answered later than --iam-timeout on
		// an overloaded machine) still passed through the cache: counted
		// and reported, not fatal.
		res.wrong += run.WrongVerdicts
		if res.firstWrong == nil {
			res.firstWrong = run.FirstWrong
		}
		if err := proc.Alive(); err != nil {
			return res, err
		}
		done = cp
		label := fmt.Sprintf("%d%% of the classes", 100*cp/res.classes)
		if i == 0 {
			label = fmt.Sprintf("cache full (%d)", h.c.cacheSize)
		}
		if err := point(label, cp); err != nil {
			return res, err
		}
	}
	res.elapsed = time.Since(start)
	res.iamCalls = h.iam.TotalCalls()
	serveCPU1, err := bench.CPUTime(serve.PID)
	if err != nil {
		return res, err
	}
	selfCPU1, err := bench.CPUTime(os.Getpid())
	if err != nil {
		return res, err
	}
	res.serveCPU, res.harnessCPU = serveCPU1-serveCPU0, selfCPU1-selfCPU0
	if res.wrong > 0 {
		h.logf("memory: WARNING: %d admissions were not allowed (the machine is overloaded?); first: %v", res.wrong, res.firstWrong)
	}
	h.logf("memory: %d classes in %s (%.0f admissions/s), %d IAM calls (%.2f per class; %d distinct questions per class)",
		res.classes, res.elapsed.Round(time.Millisecond), float64(res.classes)/res.elapsed.Seconds(), res.iamCalls, float64(res.iamCalls)/float64(res.classes), perClass)
	return res, proc.Stop(10 * time.Second)
}
