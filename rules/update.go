package rules

import (
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/api/equality"
)

// The update guard: an update of an EC2NodeClass's selectors takes effect
// for the nodes it already has. Karpenter launches replacements (drift,
// expireAfter, consolidation, interruption) only into what the new
// selectors match; when they match nothing, or no subnet in a zone its
// NodeClaims run in, the old nodes drain with nowhere to go.

// claimsRule lists the NodeClaims of a class whose selectors an update
// changed.
var claimsRule = &Rule{
	Name:  "NodeClaims of the class",
	Gives: []fact{factClaims},
	Plan: func(c *Checker, o *subject, q *Questions) {
		if o.sides[sideOld].asked && c.cfg.NodeClaims != nil {
			q.query("claims", Query{Kind: QueryNodeClaims, Name: o.ec2.Name})
		}
	},
	Judge: func(c *Checker, o *subject, a Answers, _ *Verdict) {
		if ans, ok := a.one("claims"); ok {
			o.claims, o.claimsErr = ans.NodeClaims, ans.Err
		}
	},
}

// updateRule is the update guard: the old and the new resolutions of the
// lists an update changed, against the class's NodeClaims.
var updateRule = &Rule{
	Name:   "update guard",
	Codes:  []Code{SelectorUpdateStrandsNodes, SelectorUpdateChanges, SelectorChecksSkipped},
	Fields: []string{"spec.subnetSelectorTerms", "spec.securityGroupSelectorTerms", "spec.amiSelectorTerms", "spec.capacityReservationSelectorTerms"},
	Needs:  []fact{factResolution, factBefore, factClaims},
	Judge: func(c *Checker, o *subject, _ Answers, v *Verdict) {
		if !o.sides[sideOld].asked {
			return
		}
		var n notes
		if o.claimsErr != nil {
			n.skipSelector("update guard", "listing NodeClaims: "+truncate(oneLine(o.claimsErr.Error()), 80))
		}
		judgeUpdate(v, o.old.Spec, o.ec2.Spec, o.changed, o.sides[sideOld].res, o.sides[sideNew].res, o.claims)
		n.report(v, c.cfg.OnIAMError, &o.stale)
	},
}

// changedTerms names what changed in list l, for a message.
func changedTerms(old, cur EC2NodeClassSpec, l selectorList) string {
	o, n := termsOf(old, l), termsOf(cur, l)
	var parts []string
	for i := 0; i < max(len(o), len(n)); i++ {
		switch {
		case i >= len(o):
			parts = append(parts, fmt.Sprintf("%s added (%s)", listInfo[l].path.Index(i), describeTerm(l, n[i])))
		case i >= len(n):
			parts = append(parts, fmt.Sprintf("%s removed (%s)", listInfo[l].path.Index(i), describeTerm(l, o[i])))
		case !equality.Semantic.DeepEqual(o[i], n[i]):
			parts = append(parts, fmt.Sprintf("%s changed from (%s) to (%s)", listInfo[l].path.Index(i), describeTerm(l, o[i]), describeTerm(l, n[i])))
		}
	}
	return strings.Join(parts, "; ")
}

func zonesOf(r Resolution) map[string][]string {
	z := map[string][]string{}
	for _, s := range r.Subnets {
		z[s.AvailabilityZone] = append(z[s.AvailabilityZone], s.ID)
	}
	return z
}

// diff returns what is in b and not in a, and what is in a and not in b.
func diff(a, b []string) (added, removed []string) {
	in := func(list []string, s string) bool { return containsString(list, s) }
	for _, x := range b {
		if !in(a, x) {
			added = append(added, x)
		}
	}
	for _, x := range a {
		if !in(b, x) {
			removed = append(removed, x)
		}
	}
	sort.Strings(added)
	sort.Strings(removed)
	return added, removed
}

// judgeUpdate is the update guard's judge: a pure function of the two
// resolutions and the NodeClaims.
func judgeUpdate(v *Verdict, old, cur EC2NodeClassSpec, changed []selectorList, before, after Resolution, claims []NodeClaim) {
	// Only a list whose old and new terms were all resolved can be judged.
	for _, l := range changed {
		if !before.complete(l) || !after.complete(l) {
			return
		}
	}
	running := map[string]int{}
	for _, nc := range claims {
		running[nc.Zone()]++
	}
	if len(claims) > 0 {
		for _, l := range changed {
			if l == listReservations {
				continue
			}
			if len(before.ids(l)) > 0 && len(after.ids(l)) == 0 {
				v.add(deny(SelectorUpdateStrandsNodes, listInfo[l].path,
					"after this update %s match no %s, while %d NodeClaims use the class: Karpenter could replace none of them (drift, expiry, interruption) and they would drain with nowhere to go. What changed: %s. Keep a term that matches",
					listInfo[l].field, listInfo[l].noun, len(claims), truncate(changedTerms(old, cur, l), 140)))
				return
			}
		}
		if containsList(changed, listSubnets) {
			oldZ, newZ := zonesOf(before), zonesOf(after)
			var stranded []string
			for _, z := range sortedKeys(running) {
				if z == "" {
					continue
				}
				if len(oldZ[z]) > 0 && len(newZ[z]) == 0 {
					stranded = append(stranded, fmt.Sprintf("%s (%d NodeClaims; subnets %s dropped)", z, running[z], strings.Join(oldZ[z], ", ")))
				}
			}
			if len(stranded) > 0 {
				v.add(deny(SelectorUpdateStrandsNodes, subnetTermsPath,
					"after this update no subnet is selected in zone %s where the class's nodes run: Karpenter could not replace them there, and pods bound to that zone (volumes, topology spread) would stay pending. What changed: %s. Keep a subnet in each zone the class's NodeClaims use, or move them first",
					strings.Join(stranded, ", "), truncate(changedTerms(old, cur, listSubnets), 140)))
				return
			}
		}
	}
	var parts []string
	for _, x := range []struct {
		what string
		a, b []string
	}{
		{"zones", sortedKeys(zonesOf(before)), sortedKeys(zonesOf(after))},
		{"subnets", before.ids(listSubnets), after.ids(listSubnets)},
		{"security groups", before.ids(listGroups), after.ids(listGroups)},
		{"images", before.ids(listImages), after.ids(listImages)},
		{"capacity reservations", before.ids(listReservations), after.ids(listReservations)},
	} {
		added, removed := diff(x.a, x.b)
		if len(added) > 0 {
			parts = append(parts, x.what+" +"+listIDs(added, 3))
		}
		if len(removed) > 0 {
			parts = append(parts, x.what+" -"+listIDs(removed, 3))
		}
	}
	if len(parts) > 0 {
		v.add(warn(SelectorUpdateChanges, specPath, "this update changes what the class launches into (%d NodeClaims use it): %s", len(claims), strings.Join(parts, "; ")))
	}
}

func containsList(ls []selectorList, l selectorList) bool {
	for _, x := range ls {
		if x == l {
			return true
		}
	}
	return false
}
