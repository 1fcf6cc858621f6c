package rules

import (
	"context"
	"fmt"
	"sync"
	"time"
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
	// classes is the registry of the class objects its Rule.Class rules
	// make (a NodePool's class).
	classes *runner
	// rounds lists, round by round, the indexes of the rules it runs.
	rounds [][]int
	// scratch keeps the rounds' question lists between objects.
	scratch sync.Pool
}

// newRunner computes the rounds of rules: a rule runs in the round after
// the last of those giving a fact it needs. A need that no rule gives, or
// a circle of needs, is a mistake in the registry: it panics, at init
// (TestRegistries).
func newRunner(rules []*Rule, classes *runner) *runner {
	givers := make([][]int, numFacts)
	for i, r := range rules {
		for _, f := range r.Gives {
			givers[f] = append(givers[f], i)
		}
	}
	for _, r := range rules {
		for _, f := range r.Needs {
			if len(givers[f]) == 0 {
				panic(fmt.Sprintf("rules: rule %s needs fact %d, which no rule of its registry gives", r.Name, f))
			}
		}
	}
	level := make([]int, len(rules))
	const unset, visiting = -1, -2
	for i := range level {
		level[i] = unset
	}
	var visit func(i int) int
	visit = func(i int) int {
		switch level[i] {
		case visiting:
			panic(fmt.Sprintf("rules: rule %s needs, through other rules, a fact it gives", rules[i].Name))
		case unset:
		default:
			return level[i]
		}
		level[i] = visiting
		l := 0
		for _, f := range rules[i].Needs {
			for _, g := range givers[f] {
				l = max(l, visit(g)+1)
			}
		}
		level[i] = l
		return l
	}
	rounds := 0
	for i := range rules {
		rounds = max(rounds, visit(i)+1)
	}
	for i, r := range rules {
		if r.Late {
			if len(r.Gives) > 0 {
				panic(fmt.Sprintf("rules: rule %s is late and gives facts", r.Name))
			}
			level[i] = rounds - 1
		}
	}
	rn := &runner{rules: rules, classes: classes, rounds: make([][]int, rounds)}
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
// object's one deadline (Checker.deadline) and the verdict cache's record.
func (rn *runner) run(ctx context.Context, c *Checker, o *subject, v *Verdict) {
	s := rn.scratch.Get().(*runScratch)
	defer rn.scratch.Put(s)
	if cap(s.qs) < len(rn.rules) {
		s.qs = make([]Questions, len(rn.rules))
		s.outs = make([]Verdict, len(rn.rules))
	}
	outs := s.outs[:len(rn.rules)]
	rn.runRules(ctx, c, o, v, s, outs)
	// The demotable rules' findings are demoted together, as one verdict:
	// their warnings first, then their denials as warnings.
	var demoted Verdict
	for i, r := range rn.rules {
		into := v
		if r.Demotable && o.demote {
			into = &demoted
		} else if len(demoted.Denials)+len(demoted.Warnings) > 0 {
			demoted.demote("spec.tags update, not refused")
			v.merge(demoted)
			demoted = Verdict{}
		}
		into.merge(outs[i])
		outs[i] = Verdict{}
	}
	demoted.demote("spec.tags update, not refused")
	v.merge(demoted)
}

// runRules runs the rules round by round, each rule's findings into its
// own of outs (index for index with rn.rules), then their Finish. The
// time spent asking goes on v.IAMTime.
func (rn *runner) runRules(ctx context.Context, c *Checker, o *subject, v *Verdict, s *runScratch, outs []Verdict) {
	qs := s.qs[:len(rn.rules)]
	for i := range outs {
		outs[i] = Verdict{}
		qs[i].reset()
	}
	for _, round := range rn.rounds {
		for _, i := range round {
			if cf := rn.rules[i].Class; cf != nil {
				if o.poolClass = cf(c, o); o.poolClass != nil {
					o.classVerdict = rn.classes.within(ctx, c, o.poolClass)
					v.IAMTime += o.classVerdict.IAMTime
				}
			}
		}
		all := s.all[:0]
		for _, i := range round {
			if p := rn.rules[i].Plan; p != nil {
				p(c, o, &qs[i])
				all = append(all, qs[i].qs...)
			}
		}
		var as []Answer
		if len(all) > 0 {
			asked := time.Now()
			as = c.ask(ctx, all)
			v.IAMTime += time.Since(asked)
		}
		s.all = all[:0]
		at := 0
		for _, i := range round {
			n := len(qs[i].qs)
			if j := rn.rules[i].Judge; j != nil {
				j(c, o, Answers{q: &qs[i], as: as[at : at+n]}, &outs[i])
			}
			at += n
		}
	}
	for i, r := range rn.rules {
		if r.Finish != nil {
			r.Finish(c, o, &outs[i])
		}
		qs[i].plan = nil
	}
}

// merge adds o's findings to v, after its own.
func (v *Verdict) merge(o Verdict) {
	v.Denials = append(v.Denials, o.Denials...)
	v.Warnings = append(v.Warnings, o.Warnings...)
	if o.NotChecked != nil {
		v.NotChecked = o.NotChecked
	}
}

// judgeShared is judge of an object the verdict cache keeps under key:
// the admissions of the same object at once share one judgment, kept when
// it may be (verdicts.go).
func (rn *runner) judgeShared(ctx context.Context, c *Checker, key string, o *subject) Verdict {
	return c.verdicts.share(ctx, key, func(ctx context.Context) Verdict { return rn.judge(ctx, c, o) })
}

// judge judges o with its rules under one deadline, the object's (an
// admission's, or one object's of check or the audit).
func (rn *runner) judge(ctx context.Context, c *Checker, o *subject) Verdict {
	ctx, cancel := c.deadline(ctx)
	defer cancel()
	return rn.within(ctx, c, o)
}

// within judges o with its rules under the caller's deadline; nothing is
// planned with an object past the input bounds.
func (rn *runner) within(ctx context.Context, c *Checker, o *subject) Verdict {
	if v, out := outOfBounds(c.bounds(o)); out {
		o.pastBounds = true
		return v
	}
	var v Verdict
	rn.run(ctx, c, o, &v)
	return v
}

// deadline bounds ctx by the IAM deadline of one object, when set: the
// one deadline of an admission (or of one object in check or the audit),
// set by runner.judge and by nothing under it.
func (c *Checker) deadline(ctx context.Context) (context.Context, context.CancelFunc) {
	if c.cfg.IAMTimeout > 0 {
		return context.WithTimeout(ctx, c.cfg.IAMTimeout)
	}
	return ctx, func() {}
}

// bounds are the input bounds o is past: nothing is planned with it then.
func (c *Checker) bounds(o *subject) []Finding {
	switch {
	case o.ec2 != nil:
		return c.boundsEC2NodeClass(o.ec2, o.np)
	case o.eks != nil:
		return c.boundsNodeClass(o.eks)
	default:
		return boundsNodePool(o.np)
	}
}
