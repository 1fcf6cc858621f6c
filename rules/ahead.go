package rules

import (
	"context"
	"slices"
	"strings"
	"sync"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
)

// The runner's first round. An EC2NodeClass's selectors take two
// sequential AWS round trips (SSM's parameters, then the images behind
// them), and its launch questions wait for them. What the class needs that
// does not depend on them is asked meanwhile, in the same round: the node
// role or instance profile, the cluster, the node role's access entry (on
// the role's own ARN as spec.role implies it, again on the real ARN only
// when IAM says its path is another, or when only the profile names it),
// and the KMS keys of its volumes. The rules then find these answers in
// the views' caches (or join the calls still in flight: the caches
// coalesce), so that a cold admission makes two sequential round trips,
// not five, and no question is asked twice.

// askAhead starts the first round's lookups of cl and spec on their own
// goroutines and returns a function that waits for them. Nothing is asked
// offline, for a class the format rules refuse, or for an Auto Mode class
// (its checks run in one round already).
func (c *Checker) askAhead(ctx context.Context, cl class, spec EC2NodeClassSpec) (wait func()) {
	var wg sync.WaitGroup
	if c.cfg.IAM == nil || cl.eks {
		return wg.Wait
	}
	if keys := kmsKeysAhead(spec, c.cfg.Region); len(keys) > 0 && c.cfg.KMS != nil {
		qs := make([]Query, len(keys))
		for i, k := range keys {
			qs[i] = Query{Kind: QueryKMSKey, Name: k}
		}
		wg.Go(func() { c.ask(ctx, qs) })
	}
	var (
		first Query
		guess string
	)
	switch {
	case cl.role != "" && cl.profile == "":
		ref, _, ok := CheckRoleFormat(rolePath, cl.role, c.Account())
		if !ok {
			return wg.Wait
		}
		first = roleQuery(ref.Name)
		if ref.Account != "" || c.Account() != "" {
			guess = c.nodeRoleARN(ref)
		}
	case cl.profile != "" && cl.role == "":
		name, _, ok := CheckInstanceProfileFormat(instanceProfilePath, cl.profile)
		if !ok {
			return wg.Wait
		}
		first = profileQuery(name)
	default:
		return wg.Wait
	}
	cluster := c.clusterQueries()
	if guess != "" && len(cluster) > 0 {
		wg.Go(func() { c.askEntryAhead(ctx, cluster, guess) })
	}
	wg.Go(func() {
		a := c.ask(ctx, []Query{first})[0]
		real := a.Role.ARN
		if first.Kind == QueryInstanceProfile && len(a.Profile.Roles) > 0 {
			real = a.Profile.Roles[0].ARN
		}
		if a.Err == nil && real != "" && real != guess && len(cluster) > 0 {
			c.askEntryAhead(ctx, cluster, real)
		}
	})
	return wg.Wait
}

// askEntryAhead asks for the cluster, then, when it looks nodes up in its
// access entries, for the entry of the node role roleARN.
func (c *Checker) askEntryAhead(ctx context.Context, cluster []Query, roleARN string) {
	a := c.ask(ctx, cluster)[0]
	if a.Err != nil || !a.Cluster.UsesAccessEntries() {
		return
	}
	if _, err := authz.ParseRoleARN(roleARN); err != nil {
		return
	}
	c.ask(ctx, []Query{{Kind: QueryAccessEntry, Name: roleARN}})
}

// kmsKeysAhead are the distinct KMS keys of spec's volumes that checkKMS
// looks up: named, and not in another region by their ARN.
func kmsKeysAhead(spec EC2NodeClassSpec, region string) []string {
	var out []string
	for _, m := range spec.BlockDeviceMappings {
		if m.EBS == nil || m.EBS.KMSKeyID == nil {
			continue
		}
		id := strings.TrimSpace(*m.EBS.KMSKeyID)
		if id == "" {
			continue
		}
		if r, _, ok := authz.KMSKeyARNParts(id); ok && region != "" && r != region {
			continue
		}
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}
