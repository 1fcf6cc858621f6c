package rules

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"slices"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/sync/singleflight"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
)

// The verdict cache. GitOps tools replay the same objects on every sync,
// and server-side dry-runs resend them: an object whose read fields (the
// rules' own types hold nothing else), name and UID are those of one
// judged a moment ago, while nothing the verdict was judged from changed,
// gets that verdict again without a question or a judge.
//
// "Nothing changed" is Config.Changes: a count that every AWS view's cache
// moves when an answer it held changes, and serve's informers move when a
// node class, a NodePool or aws-auth does. A verdict judged from an answer
// AWS could not give, or gave stale, is never kept: "could not check" is
// asked again at the next admission. A verdict is kept at most
// Config.VerdictTTL, so that an answer past its own TTL is asked again
// within that time of its expiry.
//
// Creates are cached; an update is judged against its old object and the
// NodeClaims of the class, and an update that leaves the read fields alone
// never reaches the rules (Unchanged).

// verdictCacheSize is how many verdicts a Checker keeps: a few KiB each,
// enough for the classes and NodePools a GitOps tool replays in one sync.
const verdictCacheSize = 256

type verdictCache struct {
	ttl     time.Duration
	changes *authz.Changes
	now     func() time.Time
	entries *lru.Cache[string, verdictEntry]
	// judging shares one judgment among the admissions of the same object
	// at once (a burst of replays): the first judges, the others wait.
	judging singleflight.Group
	hits    atomic.Uint64
}

type verdictEntry struct {
	v       Verdict
	changes uint64
	expires time.Time
}

// newVerdictCache returns a cache keeping verdicts ttl at most, while
// changes does not move; nil when ttl is 0.
func newVerdictCache(ttl time.Duration, changes *authz.Changes, now func() time.Time) *verdictCache {
	if ttl <= 0 {
		return nil
	}
	l, _ := lru.New[string, verdictEntry](verdictCacheSize) // only a size <= 0 errs
	return &verdictCache{ttl: ttl, changes: changes, now: now, entries: l}
}

// verdictKey is the key of an object: its kind, name, UID and spec (the
// rules' types hold the fields the rules read, and nothing else).
func verdictKey(kind, name, uid string, spec any) (string, bool) {
	b, err := json.Marshal(struct {
		Kind, Name, UID string
		Spec            any
	}{kind, name, uid, spec})
	if err != nil {
		return "", false
	}
	sum := sha256.Sum256(b)
	return string(sum[:]), true
}

// cached returns the verdict kept under key, when nothing it was judged
// from changed since and it has not expired. A nil cache keeps nothing.
func (vc *verdictCache) cached(key string) (Verdict, bool) {
	if vc == nil {
		return Verdict{}, false
	}
	if e, hit := vc.entries.Get(key); hit && e.changes == vc.changes.Count() && vc.now().Before(e.expires) {
		vc.hits.Add(1)
		v := e.v.clone()
		v.IAMTime = 0 // nothing was asked
		return v, true
	}
	return Verdict{}, false
}

// share returns judge's verdict of the object keyed key, shared by the
// admissions of the same object at once (the first judges, the others
// wait), and keeps it when it may be: judged from fresh, certain answers
// only (the asker notes the others in the askRecord judge's ctx carries).
func (vc *verdictCache) share(ctx context.Context, key string, judge func(context.Context) Verdict) Verdict {
	changes := vc.changes.Count()
	now := vc.now()
	ch := vc.judging.DoChan(key, func() (any, error) {
		rec := &askRecord{}
		v := judge(context.WithValue(ctx, askRecordKey{}, rec))
		if !rec.uncertain.Load() && certain(v) {
			vc.entries.Add(key, verdictEntry{v: v.clone(), changes: changes, expires: now.Add(vc.ttl)})
		}
		return v, nil
	})
	select {
	case res := <-ch:
		v := res.Val.(Verdict)
		if res.Shared {
			v = v.clone()
		}
		return v
	case <-ctx.Done():
		// This admission's deadline ended while another judged the same
		// object: its own judgment answers at once, from what is cached.
		return judge(ctx)
	}
}

// clone returns v with slices of its own: callers rewrite messages.
func (v Verdict) clone() Verdict {
	v.Denials = slices.Clone(v.Denials)
	v.Warnings = slices.Clone(v.Warnings)
	v.NotChecked = slices.Clone(v.NotChecked)
	return v
}

// certain reports whether v says nothing of IAM being unavailable or
// stale. (A check skipped for the configuration's sake, as no EKS source,
// is as true at the next admission; one skipped for an answer AWS could
// not give is noted by the asker, askRecord.)
func certain(v Verdict) bool {
	for _, fs := range [][]Finding{v.Denials, v.Warnings} {
		for _, f := range fs {
			if f.Code == IAMUnavailable || f.Code == IAMStale {
				return false
			}
		}
	}
	return true
}

// askRecord is what the asker notes about one object's answers for the
// verdict cache: whether any was unavailable, stale, or an error other
// than "not found".
type askRecord struct{ uncertain atomic.Bool }

type askRecordKey struct{}
