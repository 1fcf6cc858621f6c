package iamserver

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
)

// The server also speaks EKS's REST-JSON API for the calls the node-join
// checks make, from the snapshot's cluster and AccessEntries sections:
//
//	GET /clusters/{name}                                           DescribeCluster
//	GET /clusters/{name}/access-entries/{principalArn}             DescribeAccessEntry
//	GET /clusters/{name}/access-entries/{principalArn}/access-policies  ListAssociatedAccessPolicies
//
// Their call counts are kept under "eks:" names, apart from IAM's; their
// latency is SetEKSLatency's (or WithActionLatency of the "eks:" name);
// faults are injected with a Failure whose Action names them or is "eks:*".
// Point the SDK's EKS client at the same URL as IAM's.

const eksPrefix = "eks:"

// EKS action names, for Calls, WithActionLatency and Failure.Action.
const (
	EKSDescribeCluster              = eksPrefix + "DescribeCluster"
	EKSDescribeAccessEntry          = eksPrefix + "DescribeAccessEntry"
	EKSListAssociatedAccessPolicies = eksPrefix + "ListAssociatedAccessPolicies"
	EKSAll                          = eksPrefix + "*"
)

// WithEKSLatency delays every EKS answer by d.
func WithEKSLatency(d time.Duration) Option { return func(s *Server) { s.eksLatency = d } }

// SetEKSLatency sets the delay of every EKS answer.
func (s *Server) SetEKSLatency(d time.Duration) {
	s.mu.Lock()
	s.eksLatency = d
	s.mu.Unlock()
}

// serveEKS answers one EKS request.
func (c *call) serveEKS() {
	if c.r.Method != http.MethodGet {
		c.eksFail(http.StatusMethodNotAllowed, "InvalidRequestException", "only the GET operations DescribeCluster, DescribeAccessEntry and ListAssociatedAccessPolicies are served")
		return
	}
	if c.r.Header.Get("Authorization") == "" {
		c.eksFail(http.StatusForbidden, "MissingAuthenticationTokenException", "Missing Authentication Token")
		return
	}
	// The principal ARN is one path segment, its slashes escaped: split
	// the escaped path, then unescape each segment.
	var parts []string
	for _, seg := range strings.Split(strings.TrimPrefix(c.r.URL.EscapedPath(), "/"), "/") {
		p, err := url.PathUnescape(seg)
		if err != nil {
			c.eksFail(http.StatusBadRequest, "InvalidRequestException", "bad path segment "+seg)
			return
		}
		parts = append(parts, p)
	}
	var action string
	switch {
	case len(parts) == 2:
		action = EKSDescribeCluster
	case len(parts) == 4 && parts[2] == "access-entries":
		action = EKSDescribeAccessEntry
	case len(parts) == 5 && parts[2] == "access-entries" && parts[4] == "access-policies":
		action = EKSListAssociatedAccessPolicies
	default:
		c.eksFail(http.StatusNotFound, "InvalidRequestException", "no EKS operation at "+c.r.URL.Path)
		return
	}
	if c.injected(action, faultReplies{
		throttling:     func() { c.eksFail(http.StatusTooManyRequests, "ThrottlingException", "Rate exceeded") },
		serviceFailure: func() { c.eksFail(http.StatusInternalServerError, "ServerException", "An internal error occurred.") },
		accessDenied: func() {
			c.eksFail(http.StatusForbidden, "AccessDeniedException", "User is not authorized to perform: "+action)
		},
		malformed: func() {
			c.w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(c.w, `{"cluster": {"name": "trunc`)
		},
	}) {
		return
	}
	if c.snap == nil {
		c.eksFail(http.StatusInternalServerError, "ServerException", "The local endpoint has no snapshot loaded.")
		return
	}
	ctx := c.r.Context()
	switch action {
	case EKSDescribeCluster:
		cl, err := c.snap.Cluster(ctx, parts[1])
		if err != nil {
			c.eksError(err)
			return
		}
		c.eksReply(map[string]any{"cluster": clusterJSON(cl)})
	case EKSDescribeAccessEntry:
		e, err := c.snap.AccessEntry(ctx, parts[1], parts[3])
		if err != nil {
			c.eksError(err)
			return
		}
		c.eksReply(map[string]any{"accessEntry": map[string]any{
			"clusterName": parts[1], "principalArn": e.PrincipalARN, "type": e.Type,
			"username": e.Username, "kubernetesGroups": nonNil(e.Groups),
		}})
	case EKSListAssociatedAccessPolicies:
		e, err := c.snap.AccessEntry(ctx, parts[1], parts[3])
		if err != nil {
			c.eksError(err)
			return
		}
		pols := []map[string]any{}
		for _, p := range e.Policies {
			pols = append(pols, map[string]any{"policyArn": p, "accessScope": map[string]any{"type": "cluster"}})
		}
		c.eksReply(map[string]any{"clusterName": parts[1], "principalArn": e.PrincipalARN, "associatedAccessPolicies": pols})
	}
}

func clusterJSON(cl authz.Cluster) map[string]any {
	out := map[string]any{
		"name": cl.Name, "arn": cl.ARN, "roleArn": cl.RoleARN, "status": "ACTIVE",
		"accessConfig":  map[string]any{"authenticationMode": cl.AuthenticationMode},
		"computeConfig": map[string]any{"enabled": cl.AutoMode},
	}
	if cl.Version != "" {
		// As EKS answers it: the cluster's Kubernetes version.
		out["version"] = cl.Version
	}
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// eksError answers a snapshot error as EKS would.
func (c *call) eksError(err error) {
	var nf *authz.NotFoundError
	if errors.As(err, &nf) {
		c.eksFail(http.StatusNotFound, "ResourceNotFoundException", fmt.Sprintf("No %s found for %s.", nf.Kind, nf.Name))
		return
	}
	// A snapshot without the section: EKS has no such cluster here.
	c.eksFail(http.StatusNotFound, "ResourceNotFoundException", err.Error())
}

func (c *call) eksReply(v any) {
	body, err := json.Marshal(v)
	if err != nil {
		c.eksFail(http.StatusInternalServerError, "ServerException", err.Error())
		return
	}
	c.w.Header().Set("Content-Type", "application/json")
	c.w.Header().Set("x-amzn-RequestId", c.requestID)
	c.w.WriteHeader(http.StatusOK)
	c.w.Write(body)
}

// eksFail writes an error in the REST-JSON shape: the code in
// X-Amzn-ErrorType, the message in the body.
func (c *call) eksFail(status int, code, message string) {
	c.w.Header().Set("Content-Type", "application/json")
	c.w.Header().Set("x-amzn-RequestId", c.requestID)
	c.w.Header().Set("X-Amzn-ErrorType", code)
	c.w.WriteHeader(status)
	body, _ := json.Marshal(map[string]string{"message": message})
	c.w.Write(body)
}
