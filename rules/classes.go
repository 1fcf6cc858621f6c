package rules

import (
	"context"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// ClusterClasses resolves NodePool references against a cluster through a
// client.Reader: the manager's cached client in `serve` (an informer per
// kind, no API call per admission), a direct client in `check`.
type ClusterClasses struct {
	Reader client.Reader
}

var _ ClassGetter = ClusterClasses{}

// GetEC2NodeClass implements ClassGetter. A cluster without the
// EC2NodeClass CRD has no such class.
func (c ClusterClasses) GetEC2NodeClass(ctx context.Context, name string) (*EC2NodeClass, bool, error) {
	obj := &EC2NodeClass{}
	return get(ctx, c.Reader, name, obj)
}

// GetNodeClass implements ClassGetter. A cluster without EKS Auto Mode's
// NodeClass CRD has no such class.
func (c ClusterClasses) GetNodeClass(ctx context.Context, name string) (*NodeClass, bool, error) {
	obj := &NodeClass{}
	return get(ctx, c.Reader, name, obj)
}

func get[T client.Object](ctx context.Context, r client.Reader, name string, obj T) (T, bool, error) {
	var zero T
	err := r.Get(ctx, types.NamespacedName{Name: name}, obj)
	switch {
	case err == nil:
		return obj, true, nil
	case apierrors.IsNotFound(err), meta.IsNoMatchError(err):
		return zero, false, nil
	}
	return zero, false, err
}

var (
	_ NodePoolLister  = ClusterClasses{}
	_ NodeClaimLister = ClusterClasses{}
)

// NodePoolsUsing implements NodePoolLister: the cluster's NodePools whose
// nodeClassRef names the EC2NodeClass class. A cluster without the
// NodePool CRD has none.
func (c ClusterClasses) NodePoolsUsing(ctx context.Context, class string) ([]NodePool, error) {
	var list NodePoolList
	if err := c.Reader.List(ctx, &list); err != nil {
		if meta.IsNoMatchError(err) {
			return nil, nil
		}
		return nil, err
	}
	var out []NodePool
	for _, np := range list.Items {
		if ref := np.Spec.Template.Spec.NodeClassRef; ref != nil && ref.GroupKind() == EC2NodeClassGK && ref.Name == class {
			out = append(out, np)
		}
	}
	return out, nil
}

// NodeClaimsUsing implements NodeClaimLister: the cluster's NodeClaims
// whose nodeClassRef names the EC2NodeClass class (through the manager's
// cache in serve). A cluster without the NodeClaim CRD has none.
func (c ClusterClasses) NodeClaimsUsing(ctx context.Context, class string) ([]NodeClaim, error) {
	var list NodeClaimList
	if err := c.Reader.List(ctx, &list); err != nil {
		if meta.IsNoMatchError(err) {
			return nil, nil
		}
		return nil, err
	}
	var out []NodeClaim
	for _, nc := range list.Items {
		if ref := nc.Spec.NodeClassRef; ref != nil && ref.GroupKind() == EC2NodeClassGK && ref.Name == class {
			out = append(out, nc)
		}
	}
	return out, nil
}

// Has implements KnownObjects: whether the cluster has obj, by name and
// UID, in the manager's cache in serve.
func (c ClusterClasses) Has(ctx context.Context, obj client.Object) bool {
	if obj.GetUID() == "" {
		return false
	}
	var got client.Object
	switch obj.(type) {
	case *EC2NodeClass:
		got = &EC2NodeClass{}
	case *NodePool:
		got = &NodePool{}
	case *NodeClass:
		got = &NodeClass{}
	default:
		return false
	}
	if err := c.Reader.Get(ctx, types.NamespacedName{Name: obj.GetName()}, got); err != nil {
		return false
	}
	return got.GetUID() == obj.GetUID()
}
