package check

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/nodeclass-guard/nodeclass-guard/rules"
)

// ClusterSource is the Source of a document read from a cluster rather than
// from a file: "cluster:<Kind>/<name>".
func ClusterSource(kind, name string) string { return "cluster:" + kind + "/" + name }

// ReadCluster lists every EC2NodeClass, EKS NodeClass and NodePool of a
// cluster (classes first, as a GitOps tree would apply them) and returns
// them as documents for Run. A kind the cluster does not serve is skipped
// and named in skipped.
func ReadCluster(ctx context.Context, r client.Reader) (docs []Document, skipped []string, err error) {
	var ec2 rules.EC2NodeClassList
	switch err := r.List(ctx, &ec2); {
	case meta.IsNoMatchError(err):
		skipped = append(skipped, "EC2NodeClass (karpenter.k8s.aws)")
	case err != nil:
		return nil, nil, fmt.Errorf("listing EC2NodeClasses: %w", err)
	}
	for i := range ec2.Items {
		nc := &ec2.Items[i]
		docs = append(docs, Document{Source: ClusterSource(rules.EC2NodeClassKind, nc.Name), APIVersion: rules.KarpenterAWSGroup + "/v1",
			Kind: rules.EC2NodeClassKind, Name: nc.Name, EC2NodeClass: nc})
	}
	var eks rules.NodeClassList
	switch err := r.List(ctx, &eks); {
	case meta.IsNoMatchError(err):
		skipped = append(skipped, "NodeClass (eks.amazonaws.com)")
	case err != nil:
		return nil, nil, fmt.Errorf("listing EKS NodeClasses: %w", err)
	}
	for i := range eks.Items {
		nc := &eks.Items[i]
		docs = append(docs, Document{Source: ClusterSource(rules.NodeClassKind, nc.Name), APIVersion: rules.EKSGroup + "/v1",
			Kind: rules.NodeClassKind, Name: nc.Name, NodeClass: nc})
	}
	var pools rules.NodePoolList
	switch err := r.List(ctx, &pools); {
	case meta.IsNoMatchError(err):
		skipped = append(skipped, "NodePool (karpenter.sh)")
	case err != nil:
		return nil, nil, fmt.Errorf("listing NodePools: %w", err)
	}
	for i := range pools.Items {
		np := &pools.Items[i]
		docs = append(docs, Document{Source: ClusterSource(rules.NodePoolKind, np.Name), APIVersion: rules.KarpenterGroup + "/v1",
			Kind: rules.NodePoolKind, Name: np.Name, NodePool: np})
	}
	return docs, skipped, nil
}

// AgainstCluster sets, for each EC2NodeClass document the cluster already
// has, the cluster's copy as the document's Current: `kubectl apply` of
// the document would be an UPDATE of it, and Run judges it as one (the
// update guard sees the NodeClaims of the class, when the Checker's
// NodeClaims lister reads the cluster). The document takes the copy's UID,
// as the object sent to the webhook would carry it.
func AgainstCluster(ctx context.Context, docs []Document, cluster rules.ClassGetter) error {
	for i := range docs {
		d := &docs[i]
		if d.EC2NodeClass == nil {
			continue
		}
		cur, ok, err := cluster.GetEC2NodeClass(ctx, d.Name)
		if err != nil {
			return fmt.Errorf("%s: reading the cluster's EC2NodeClass %s: %w", d.Source, d.Name, err)
		}
		if !ok {
			continue
		}
		d.Current = cur
		if d.EC2NodeClass.UID == "" {
			nc := *d.EC2NodeClass
			nc.UID = cur.UID
			d.EC2NodeClass = &nc
		}
	}
	return nil
}
