package iamserver

import (
	"context"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
)

// The calls that read a role's policies (what `nodeclass-guard snapshot`
// asks of the controller role): ListRolePolicies, GetRolePolicy,
// ListAttachedRolePolicies, GetPolicy and GetPolicyVersion, answered from
// the snapshot's policy set of the role. A snapshot keeps only a managed
// policy's default version; it is served as version v1.

const policyVersion = "v1"

type listRolePoliciesResponse struct {
	XMLName xml.Name `xml:"https://iam.amazonaws.com/doc/2010-05-08/ ListRolePoliciesResponse"`
	Result  struct {
		IsTruncated bool       `xml:"IsTruncated"`
		PolicyNames stringsXML `xml:"PolicyNames"`
		Marker      string     `xml:"Marker,omitempty"`
	} `xml:"ListRolePoliciesResult"`
	ResponseMetadata responseMetadata `xml:"ResponseMetadata"`
}

type getRolePolicyResponse struct {
	XMLName xml.Name `xml:"https://iam.amazonaws.com/doc/2010-05-08/ GetRolePolicyResponse"`
	Result  struct {
		RoleName       string `xml:"RoleName"`
		PolicyName     string `xml:"PolicyName"`
		PolicyDocument string `xml:"PolicyDocument"`
	} `xml:"GetRolePolicyResult"`
	ResponseMetadata responseMetadata `xml:"ResponseMetadata"`
}

type attachedPolicyXML struct {
	PolicyName string `xml:"PolicyName"`
	PolicyArn  string `xml:"PolicyArn"`
}

type listAttachedRolePoliciesResponse struct {
	XMLName xml.Name `xml:"https://iam.amazonaws.com/doc/2010-05-08/ ListAttachedRolePoliciesResponse"`
	Result  struct {
		IsTruncated      bool `xml:"IsTruncated"`
		AttachedPolicies struct {
			Members []attachedPolicyXML `xml:"member"`
		} `xml:"AttachedPolicies"`
		Marker string `xml:"Marker,omitempty"`
	} `xml:"ListAttachedRolePoliciesResult"`
	ResponseMetadata responseMetadata `xml:"ResponseMetadata"`
}

type policyXML struct {
	PolicyName       string `xml:"PolicyName"`
	PolicyID         string `xml:"PolicyId"`
	Arn              string `xml:"Arn"`
	Path             string `xml:"Path"`
	DefaultVersionID string `xml:"DefaultVersionId"`
	AttachmentCount  int    `xml:"AttachmentCount"`
	IsAttachable     bool   `xml:"IsAttachable"`
	CreateDate       string `xml:"CreateDate"`
	UpdateDate       string `xml:"UpdateDate"`
}

type getPolicyResponse struct {
	XMLName xml.Name `xml:"https://iam.amazonaws.com/doc/2010-05-08/ GetPolicyResponse"`
	Result  struct {
		Policy policyXML `xml:"Policy"`
	} `xml:"GetPolicyResult"`
	ResponseMetadata responseMetadata `xml:"ResponseMetadata"`
}

type getPolicyVersionResponse struct {
	XMLName xml.Name `xml:"https://iam.amazonaws.com/doc/2010-05-08/ GetPolicyVersionResponse"`
	Result  struct {
		PolicyVersion struct {
			Document         string `xml:"Document"`
			VersionID        string `xml:"VersionId"`
			IsDefaultVersion bool   `xml:"IsDefaultVersion"`
			CreateDate       string `xml:"CreateDate"`
		} `xml:"PolicyVersion"`
	} `xml:"GetPolicyVersionResult"`
	ResponseMetadata responseMetadata `xml:"ResponseMetadata"`
}

// encodeDocument percent-encodes a policy document as IAM does.
func encodeDocument(p *authz.Policy) string {
	return strings.ReplaceAll(url.QueryEscape(p.Document()), "+", "%20")
}

// rolePolicies returns the role's policy set, answering NoSuchEntity for
// an unknown role.
func (c *call) rolePolicies() (authz.Role, authz.PolicySet, bool) {
	name, ok := c.validName("RoleName", "roleName", 64)
	if !ok {
		return authz.Role{}, authz.PolicySet{}, false
	}
	role, err := c.snap.Role(context.Background(), name)
	if err != nil {
		c.noSuchRole(name)
		return authz.Role{}, authz.PolicySet{}, false
	}
	set, _ := c.snap.PolicySet(role.ARN)
	return role, set, true
}

// isManaged tells a managed policy (named by its ARN in a PolicySet) from
// an inline one (whose name cannot hold a colon).
func isManaged(np authz.NamedPolicy) bool { return strings.HasPrefix(np.Name, "arn:") }

func (c *call) listRolePolicies() {
	_, set, ok := c.rolePolicies()
	if !ok {
		return
	}
	var names []string
	for _, np := range set.Identity {
		if !isManaged(np) {
			names = append(names, np.Name)
		}
	}
	from, to, next, ok := c.page(len(names))
	if !ok {
		return
	}
	var out listRolePoliciesResponse
	out.Result.PolicyNames.Members = names[from:to]
	out.Result.IsTruncated, out.Result.Marker = next != "", next
	out.ResponseMetadata.RequestID = c.requestID
	c.reply(out)
}

func (c *call) getRolePolicy() {
	role, set, ok := c.rolePolicies()
	if !ok {
		return
	}
	name := c.r.Form.Get("PolicyName")
	for _, np := range set.Identity {
		if !isManaged(np) && np.Name == name {
			var out getRolePolicyResponse
			out.Result.RoleName, out.Result.PolicyName, out.Result.PolicyDocument = role.Name, np.Name, encodeDocument(np.Policy)
			out.ResponseMetadata.RequestID = c.requestID
			c.reply(out)
			return
		}
	}
	c.fail(http.StatusNotFound, "Sender", "NoSuchEntity", fmt.Sprintf("The role policy with name %s cannot be found.", name))
}

// policyName is a managed policy's name: its ARN's last segment.
func policyName(arn string) string { return arn[strings.LastIndex(arn, "/")+1:] }

func (c *call) listAttachedRolePolicies() {
	_, set, ok := c.rolePolicies()
	if !ok {
		return
	}
	var attached []attachedPolicyXML
	for _, np := range set.Identity {
		if isManaged(np) {
			attached = append(attached, attachedPolicyXML{PolicyName: policyName(np.Name), PolicyArn: np.Name})
		}
	}
	from, to, next, ok := c.page(len(attached))
	if !ok {
		return
	}
	var out listAttachedRolePoliciesResponse
	out.Result.AttachedPolicies.Members = attached[from:to]
	out.Result.IsTruncated, out.Result.Marker = next != "", next
	out.ResponseMetadata.RequestID = c.requestID
	c.reply(out)
}

// managed answers NoSuchEntity for a policy no role of the snapshot uses.
func (c *call) managed() (string, *authz.Policy, bool) {
	arn := c.r.Form.Get("PolicyArn")
	p, ok := c.snap.ManagedPolicy(arn)
	if !ok {
		c.fail(http.StatusNotFound, "Sender", "NoSuchEntity", fmt.Sprintf("Policy %s does not exist or is not attachable.", arn))
		return "", nil, false
	}
	return arn, p, true
}

func (c *call) getPolicy() {
	arn, _, ok := c.managed()
	if !ok {
		return
	}
	path := "/"
	if i, j := strings.Index(arn, ":policy/"), strings.LastIndex(arn, "/"); i >= 0 && j > i+len(":policy") {
		path = arn[i+len(":policy") : j+1]
	}
	var out getPolicyResponse
	out.Result.Policy = policyXML{PolicyName: policyName(arn), PolicyID: entityID("ANPA", arn), Arn: arn, Path: path,
		DefaultVersionID: policyVersion, AttachmentCount: 1, IsAttachable: true, CreateDate: createDate, UpdateDate: createDate}
	out.ResponseMetadata.RequestID = c.requestID
	c.reply(out)
}

func (c *call) getPolicyVersion() {
	arn, p, ok := c.managed()
	if !ok {
		return
	}
	if v := c.r.Form.Get("VersionId"); v != policyVersion {
		c.fail(http.StatusNotFound, "Sender", "NoSuchEntity", fmt.Sprintf("Policy %s version %s does not exist.", arn, v))
		return
	}
	var out getPolicyVersionResponse
	out.Result.PolicyVersion.Document, out.Result.PolicyVersion.VersionID = encodeDocument(p), policyVersion
	out.Result.PolicyVersion.IsDefaultVersion, out.Result.PolicyVersion.CreateDate = true, createDate
	out.ResponseMetadata.RequestID = c.requestID
	c.reply(out)
}
