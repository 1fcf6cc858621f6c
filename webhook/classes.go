package webhook

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
