package rules

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
)

// The aws-auth ConfigMap: where a cluster in CONFIG_MAP (or
// API_AND_CONFIG_MAP) authentication mode maps IAM roles to Kubernetes
// identities.
const (
	AWSAuthNamespace = "kube-system"
	AWSAuthName      = "aws-auth"
)

// The Kubernetes groups a node's role must be mapped to for the node to
// register.
var nodeGroups = []string{"system:bootstrappers", "system:nodes"}

// AWSAuth is the aws-auth ConfigMap as the join rules read it.
type AWSAuth struct {
	// Found is false when the cluster has no aws-auth ConfigMap.
	Found bool
	// Roles are the mapRoles entries.
	Roles []RoleMapping
}

// RoleMapping is one entry of aws-auth's mapRoles.
type RoleMapping struct {
	RoleARN  string   `json:"rolearn"`
	Username string   `json:"username,omitempty"`
	Groups   []string `json:"groups,omitempty"`
}

// ParseAWSAuth reads an aws-auth ConfigMap's data. A mapRoles that does
// not parse is an error: what the authenticator makes of it is unknown.
func ParseAWSAuth(data map[string]string) (AWSAuth, error) {
	a := AWSAuth{Found: true}
	raw := strings.TrimSpace(data["mapRoles"])
	if raw == "" {
		return a, nil
	}
	if err := yaml.Unmarshal([]byte(raw), &a.Roles); err != nil {
		return AWSAuth{}, fmt.Errorf("%s/%s mapRoles: %v", AWSAuthNamespace, AWSAuthName, err)
	}
	return a, nil
}

// AWSAuthSource reads the cluster's aws-auth ConfigMap. An error means it
// could not be read (no permission, API server unreachable, mapRoles that
// does not parse): the aws-auth check is then skipped with a warning.
type AWSAuthSource interface {
	AWSAuth(ctx context.Context) (AWSAuth, error)
}

// ClusterAWSAuth reads aws-auth through a client.Reader: in `serve`, the
// manager's cache, restricted to that one ConfigMap (and RBAC to match).
type ClusterAWSAuth struct {
	Reader client.Reader
}

var _ AWSAuthSource = ClusterAWSAuth{}

// AWSAuth implements AWSAuthSource.
func (c ClusterAWSAuth) AWSAuth(ctx context.Context) (AWSAuth, error) {
	var cm corev1.ConfigMap
	err := c.Reader.Get(ctx, types.NamespacedName{Namespace: AWSAuthNamespace, Name: AWSAuthName}, &cm)
	switch {
	case apierrors.IsNotFound(err):
		return AWSAuth{}, nil
	case err != nil:
		return AWSAuth{}, err
	}
	return ParseAWSAuth(cm.Data)
}

// StaticAWSAuth is an aws-auth read once, from `check`'s input; Err set
// means the input had none, or one that does not parse.
type StaticAWSAuth struct {
	Auth AWSAuth
	Err  error
}

// AWSAuth implements AWSAuthSource.
func (s StaticAWSAuth) AWSAuth(context.Context) (AWSAuth, error) { return s.Auth, s.Err }

// mappingsOf sorts aws-auth's entries for the role: the ones EKS's
// authenticator matches (ARN without the path), and the ones it never
// matches because they carry the role's path.
func (a AWSAuth) mappingsOf(role authz.RoleARN) (match, withPath []RoleMapping) {
	for _, m := range a.Roles {
		r, err := authz.ParseRoleARN(strings.TrimSpace(m.RoleARN))
		if err != nil || r.Partition != role.Partition || r.Account != role.Account || !strings.EqualFold(r.Name, role.Name) {
			continue
		}
		if r.Path == "/" {
			match = append(match, m)
		} else {
			withPath = append(withPath, m)
		}
	}
	return match, withPath
}

// hasNodeGroups reports whether m maps to both node groups.
func (m RoleMapping) hasNodeGroups() bool { return len(m.missingNodeGroups()) == 0 }

// missingNodeGroups returns the node groups the mapping lacks.
func (m RoleMapping) missingNodeGroups() []string {
	var missing []string
	for _, g := range nodeGroups {
		if !containsString(m.Groups, g) {
			missing = append(missing, g)
		}
	}
	return missing
}

// awsAuthLine is the mapRoles entry a node role needs, on one line.
func awsAuthLine(role authz.RoleARN) string {
	return fmt.Sprintf("{rolearn: %s, username: system:node:{{EC2PrivateDNSName}}, groups: [system:bootstrappers, system:nodes]}", role.WithoutPath())
}
