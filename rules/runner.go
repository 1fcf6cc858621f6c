package rules

import (
	"context"
	"fmt"
	"sync"
)

// runner runs a registry of rules on one object: in rounds computed once
// from what the rules declare (a rule runs in the round after the last of
// the rules giving a fact it needs), every question of a round asked at
// once through the one asker (Checker.ask: batched, coalesced, cached,
// under the caller's one deadline), the answers handed to each judge by
// the names its plan gave them, and the findings put in the registry's
// order whatever the round that found them.
type runner struct {
	rules []*Rule
	// rounds lists, round by round, the indexes of the rules it runs.
	rounds [][]int
	// scratch keeps the rounds' question lists between objects.
	scratch sync.Pool
}

// newRunner computes the rounds of rules. A need that no rule before it
// gives is a mistake in the registry: it panics, at init (TestRegistry).
func newRunner(rules []*Rule) *runner {
	level := make([]int, len(rules))
	var lastGiver [numFacts]int
	for i := range lastGiver {
		lastGiver[i] = -1
	}
	givers := make([][]int, numFacts)
	for i, r := range rules {
		for _, f := range r.Gives {
			givers[f] = append(givers[f], i)
		}
	}
	rounds := 0
	for i, r := range rules {
		for _, f := range r.Needs {
			if len(givers[f]) == 0 {
				panic(fmt.Sprintf("rules: rule %s needs fact %d, which no rule gives", r.Name, f))
			}
			for _, g := range givers[f] {
				if g >= i {
					panic(fmt.Sprintf("rules: rule %s needs fact %d, given by rule %s listed after it", r.Name, f, rules[g].Name))
				}
				level[i] = max(level[i], level[g]+1)
			}
		}
		rounds = max(rounds, level[i]+1)
	}
	rn := &runner{rules: rules, rounds: make([][]int, rounds)}
	for i := range rules {
		rn.rounds[level[i]] = append(rn.rounds[level[i]], i)
	}
	rn.scratch.New = func() any { return &runScratch{} }
	return rn
}

type runScratch struct {
	qs   []Questions
	all  []Query
	outs []Verdict
}

// run runs the rules on o and adds their findings to v. ctx carries the
// object's one deadline and the verdict cache's record.
func (rn *runner) run(ctx context.Context, c *Checker, o *object, v *Verdict) {
	s := rn.scratch.Get().(*runScratch)
	defer rn.scratch.Put(s)
	if cap(s.qs) < len(rn.rules) {
		s.qs = make([]Questions, len(rn.rules))
		s.outs = make([]Verdict, len(rn.rules))
	}
	qs, outs := s.qs[:len(rn.rules)], s.outs[:len(rn.rules)]
	for i := range outs {
		outs[i] = Verdict{}
		qs[i].reset()
	}
	for _, round := range rn.rounds {
		all := s.all[:0]
		for _, i := range round {
			if p := rn.rules[i].Plan; p != nil {
				p(c, o, &qs[i])
				all = append(all, qs[i].qs...)
			}
		}
		var as []Answer
		if len(all) > 0 {
			as = c.ask(ctx, all)
		}
		s.all = all[:0]
		at := 0
		for _, i := range round {
			n := len(qs[i].qs)
			rn.rules[i].Judge(c, o, Answers{q: &qs[i], as: as[at : at+n]}, &outs[i])
			at += n
		}
	}
	for i := range outs {
		v.Denials = append(v.Denials, outs[i].Denials...)
		v.Warnings = append(v.Warnings, outs[i].Warnings...)
		if outs[i].NotChecked != nil {
			v.NotChecked = outs[i].NotChecked
		}
		outs[i] = Verdict{}
	}
	for i := range qs {
		qs[i].plan = nil
	}
}
