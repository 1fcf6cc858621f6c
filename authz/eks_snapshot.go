package authz

import (
	"context"
	"errors"
	"fmt"
)

// The snapshot's optional EKS sections, for the node-join checks offline:
//
//   - "cluster": the object `aws eks describe-cluster --name NAME` prints
//     under that key (merged as is with `jq -s add`);
//   - "AccessEntries": an array of `aws eks describe-access-entry` outputs,
//     each optionally merged with the `aws eks
//     list-associated-access-policies` output of the same principal (its
//     associatedAccessPolicies).
//
// A snapshot without them stays valid: the questions they would answer are
// unavailable, and the rules report the join checks as skipped.
type (
	eksClusterDoc struct {
		Name         string `json:"name"`
		Arn          string `json:"arn"`
		RoleArn      string `json:"roleArn"`
		Version      string `json:"version"`
		AccessConfig *struct {
			AuthenticationMode string `json:"authenticationMode"`
		} `json:"accessConfig"`
		ComputeConfig *struct {
			Enabled *bool `json:"enabled"`
		} `json:"computeConfig"`
	}
	accessEntryDoc struct {
		AccessEntry *struct {
			PrincipalArn     string   `json:"principalArn"`
			Type             string   `json:"type"`
			Username         string   `json:"username"`
			KubernetesGroups []string `json:"kubernetesGroups"`
		} `json:"accessEntry"`
		AssociatedAccessPolicies []struct {
			PolicyArn string `json:"policyArn"`
		} `json:"associatedAccessPolicies"`
	}
)

// eksSnapshot is what a snapshot knows about EKS.
type eksSnapshot struct {
	cluster *Cluster
	// entries is nil when the snapshot has no AccessEntries section.
	entries map[string]AccessEntry
}

func buildEKS(c *eksClusterDoc, entries *[]accessEntryDoc) (eksSnapshot, error) {
	var s eksSnapshot
	if c != nil {
		if c.Name == "" {
			return s, errors.New(`cluster: no name; want the object "aws eks describe-cluster" prints`)
		}
		cl := Cluster{Name: c.Name, ARN: c.Arn, RoleARN: c.RoleArn, Version: c.Version, AuthenticationMode: AuthModeConfigMap}
		if c.AccessConfig != nil && c.AccessConfig.AuthenticationMode != "" {
			cl.AuthenticationMode = c.AccessConfig.AuthenticationMode
		}
		if c.ComputeConfig != nil && c.ComputeConfig.Enabled != nil {
			cl.AutoMode = *c.ComputeConfig.Enabled
		}
		s.cluster = &cl
	}
	if entries != nil {
		s.entries = map[string]AccessEntry{}
		for i, d := range *entries {
			if d.AccessEntry == nil || d.AccessEntry.PrincipalArn == "" {
				return s, fmt.Errorf(`AccessEntries[%d]: no accessEntry.principalArn; want the output of "aws eks describe-access-entry"`, i)
			}
			e := AccessEntry{PrincipalARN: d.AccessEntry.PrincipalArn, Type: d.AccessEntry.Type, Username: d.AccessEntry.Username, Groups: d.AccessEntry.KubernetesGroups}
			for _, p := range d.AssociatedAccessPolicies {
				e.Policies = append(e.Policies, p.PolicyArn)
			}
			s.entries[e.PrincipalARN] = e
		}
	}
	return s, nil
}

var _ EKSView = (*Snapshot)(nil)

// HasEKS reports whether the snapshot has a cluster section.
func (s *Snapshot) HasEKS() bool { return s.eks.cluster != nil }

// Cluster implements EKSView from the snapshot's cluster section.
func (s *Snapshot) Cluster(_ context.Context, name string) (Cluster, error) {
	if s.eks.cluster == nil {
		return Cluster{}, &UnavailableError{Service: "EKS", Op: "DescribeCluster",
			Err: errors.New(`the snapshot has no "cluster" section (aws eks describe-cluster)`)}
	}
	if s.eks.cluster.Name != name {
		return Cluster{}, &NotFoundError{Kind: "EKS cluster", Name: name}
	}
	return *s.eks.cluster, nil
}

// AccessEntry implements EKSView from the snapshot's AccessEntries section,
// matching the principal's ARN exactly, as EKS does.
func (s *Snapshot) AccessEntry(_ context.Context, cluster, principalARN string) (AccessEntry, error) {
	if s.eks.entries == nil {
		return AccessEntry{}, &UnavailableError{Service: "EKS", Op: "DescribeAccessEntry",
			Err: errors.New(`the snapshot has no "AccessEntries" section (aws eks describe-access-entry)`)}
	}
	if s.eks.cluster != nil && s.eks.cluster.Name != cluster {
		return AccessEntry{}, &NotFoundError{Kind: "EKS cluster", Name: cluster}
	}
	e, ok := s.eks.entries[principalARN]
	if !ok {
		return AccessEntry{}, &NotFoundError{Kind: "access entry", Name: principalARN}
	}
	return e, nil
}
