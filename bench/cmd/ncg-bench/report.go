package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/nodeclass-guard/nodeclass-guard/bench"
)

// Goals of `make bench` (docs/benchmarks.md).
const (
	goalP99Ratio        = 1.25
	goalThroughputRatio = 0.8
	goalColdSlackMs     = 10.0
	// goalRSSMiB bounds serve's RSS with its caches at their bounds (issue
	// 24), and RSS after every class stays within 1.25 times that.
	goalRSSMiB = 96.0
	// goalFloorCPURatio bounds serve's CPU per warm admission over
	// controller-runtime's no-op typed validator's.
	goalFloorCPURatio = 1.25
	// goalIAMCallsPerClass bounds the cold burst's IAM calls per class
	// (100 for the default 50 classes, no organization).
	goalIAMCallsPerClass = 2.0
)

// summary prints the tables of the scenarios that ran and their goals,
// met or missed.
func (h *harness) summary(warm *warmResult, cold *coldResult, mem *memResult) {
	var goals []string
	goal := func(ok bool, format string, args ...any) {
		verdict := "met   "
		if !ok {
			verdict = "MISSED"
		}
		goals = append(goals, verdict+" "+fmt.Sprintf(format, args...))
	}

	if warm != nil {
		fmt.Fprintln(h.out)
		fmt.Fprintln(h.out, "== warm path: nodeclass-guard serve (IAM cache warm) vs the trivial webhook ==")
		tw := tabwriter.NewWriter(h.out, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "load\ttarget\tp50 ms\tp99 ms\tp99.9 ms\treq/s\tCPU µs/req\tallocs/req\t")
		for _, l := range warm.levels {
			for _, x := range []struct {
				name string
				m    measured
			}{{"nodeclass-guard", l.serve}, {"trivial", l.trivial}, {"no-op validator", l.noop}} {
				fmt.Fprintf(tw, "%s\t%s\t%.3f\t%.3f\t%.3f\t%.0f\t%.0f\t%.0f\t\n", l.name, x.name,
					bench.Ms(x.m.lat.P50), bench.Ms(x.m.lat.P99), bench.Ms(x.m.lat.P999), x.m.throughput,
					float64(x.m.cpuPerReq.Microseconds()), x.m.allocsPerReq)
			}
			fmt.Fprintf(tw, "%s\tratio\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t\n", l.name,
				ratio(l.serve.lat.P50, l.trivial.lat.P50), ratio(l.serve.lat.P99, l.trivial.lat.P99), ratio(l.serve.lat.P999, l.trivial.lat.P999),
				l.serve.throughput/l.trivial.throughput, ratio(l.serve.cpuPerReq, l.trivial.cpuPerReq), l.serve.allocsPerReq/l.trivial.allocsPerReq)
		}
		tw.Flush()
		fmt.Fprintf(h.out, "serve RSS after the warm runs: %s\n", warm.rss)
		ref := warm.levels[warm.refIndex]
		p99r, tpr := ratio(ref.serve.lat.P99, ref.trivial.lat.P99), ref.serve.throughput/ref.trivial.throughput
		goal(p99r <= goalP99Ratio, "warm (%s) p99 ratio %.2f <= %.2f", ref.name, p99r, goalP99Ratio)
		goal(tpr >= goalThroughputRatio, "warm (%s) throughput ratio %.2f >= %.2f", ref.name, tpr, goalThroughputRatio)
		floor := ratio(ref.serve.cpuPerReq, ref.noop.cpuPerReq)
		goal(floor <= goalFloorCPURatio, "warm (%s) CPU per admission over the no-op validator's %.2f <= %.2f", ref.name, floor, goalFloorCPURatio)
	}

	if cold != nil {
		fmt.Fprintln(h.out)
		fmt.Fprintf(h.out, "== cold cache: %d concurrent admissions, %d classes, IAM latency %s ==\n", h.c.coldAdmissions, h.c.coldClasses, h.c.coldLatency)
		tw := tabwriter.NewWriter(h.out, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "burst\tp50 ms\tp99 ms\tp99.9 ms\tmax ms\t")
		for _, x := range []struct {
			name string
			l    bench.Latencies
		}{{"nodeclass-guard, cache empty", cold.cold}, {"nodeclass-guard, cache warm", cold.warm}, {"trivial", cold.trivial},
			{fmt.Sprintf("nodeclass-guard, %d cold admissions one at a time", coldProbes), cold.single}} {
			fmt.Fprintf(tw, "%s\t%.1f\t%.1f\t%.1f\t%.1f\t\n", x.name, bench.Ms(x.l.P50), bench.Ms(x.l.P99), bench.Ms(x.l.P999), bench.Ms(x.l.Max))
		}
		tw.Flush()
		fmt.Fprintf(h.out, "IAM calls at the endpoint %d (%s; %d expected: one per lookup and per batch of questions sharing a context); distinct questions %d (%s); serve's IAM operations %s (SDK retries are one operation)\n",
			cold.iamCalls, byAction(cold.callsByAction), cold.calls, cold.distinct, byAction(cold.distinctByAction), byAction(cold.opsByOutcome))
		coldGoal := bench.Ms(h.c.coldLatency) + goalColdSlackMs
		excess := bench.Ms(cold.cold.P99) - bench.Ms(cold.warm.P99)
		goal(bench.Ms(cold.cold.P99) < coldGoal, "cold p99 %.1f ms < %.0f ms (IAM latency + %.0f ms)", bench.Ms(cold.cold.P99), coldGoal, goalColdSlackMs)
		goal(excess < coldGoal, "cold p99 over the same burst with the cache warm %.1f ms < %.0f ms", excess, coldGoal)
		goal(bench.Ms(cold.single.Max) < coldGoal, "one cold admission at a time: slowest %.1f ms < %.0f ms", bench.Ms(cold.single.Max), coldGoal)
		goal(cold.iamCalls <= cold.calls, "cold IAM calls %d <= the calls the questions take when IAM simulates them %d (distinct questions %d)", cold.iamCalls, cold.calls, cold.distinct)
		perClass := float64(cold.iamCalls) / float64(cold.classes)
		goal(perClass <= goalIAMCallsPerClass, "cold IAM calls per class %.2f <= %.2f", perClass, goalIAMCallsPerClass)
	}

	if mem != nil {
		fmt.Fprintln(h.out)
		fmt.Fprintf(h.out, "== memory: serve RSS, --iam-cache-size %d, %d distinct classes (%d IAM questions each) ==\n", mem.cacheSize, mem.classes, mem.perClass)
		tw := tabwriter.NewWriter(h.out, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "point\tclasses\tRSS MiB\tanon MiB\tfile MiB\theap in use MiB\t")
		for _, p := range mem.points {
			fmt.Fprintf(tw, "%s\t%d\t%.1f\t%.1f\t%.1f\t%.1f\t\n", p.label, p.classes, mib(p.mem.RSS), mib(p.mem.Anon), mib(p.mem.File), p.heapInuse/(1<<20))
		}
		tw.Flush()
		fmt.Fprintf(h.out, "%d classes in %s: %d IAM calls; CPU time serve %s, harness (load and IAM endpoint) %s; admissions not allowed %d\n",
			mem.classes, mem.elapsed.Round(100e6), mem.iamCalls, mem.serveCPU, mem.harnessCPU, mem.wrong)
		last, full := mem.points[len(mem.points)-1], mem.points[1]
		goal(mib(full.mem.RSS) <= goalRSSMiB, "RSS at the cache bound %.1f MiB <= %.0f MiB", mib(full.mem.RSS), goalRSSMiB)
		goal(last.mem.RSS <= full.mem.RSS*5/4, "bound holds: RSS after every class %.1f MiB <= 1.25 x RSS at the bound %.1f MiB", mib(last.mem.RSS), mib(full.mem.RSS))
	}

	fmt.Fprintln(h.out)
	fmt.Fprintln(h.out, "== goals ==")
	for _, g := range goals {
		fmt.Fprintln(h.out, g)
	}
	fmt.Fprintln(h.out)
}
