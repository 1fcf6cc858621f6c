package iamserver

import "encoding/xml"

// The response shapes of IAM's Query protocol, element for element as the
// SDK's awsquery deserializers read them. Field order is element order, as
// IAM sends it.

const xmlns = "https://iam.amazonaws.com/doc/2010-05-08/"

type responseMetadata struct {
	RequestID string `xml:"RequestId"`
}

type errorResponse struct {
	XMLName xml.Name `xml:"https://iam.amazonaws.com/doc/2010-05-08/ ErrorResponse"`
	Error   struct {
		Type    string `xml:"Type"`
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	} `xml:"Error"`
	RequestID string `xml:"RequestId"`
}

type roleXML struct {
	Path                     string       `xml:"Path"`
	RoleName                 string       `xml:"RoleName"`
	RoleID                   string       `xml:"RoleId"`
	Arn                      string       `xml:"Arn"`
	CreateDate               string       `xml:"CreateDate"`
	AssumeRolePolicyDocument string       `xml:"AssumeRolePolicyDocument,omitempty"`
	MaxSessionDuration       int          `xml:"MaxSessionDuration,omitempty"`
	PermissionsBoundary      *boundaryXML `xml:"PermissionsBoundary,omitempty"`
}

type boundaryXML struct {
	PermissionsBoundaryType string `xml:"PermissionsBoundaryType"`
	PermissionsBoundaryArn  string `xml:"PermissionsBoundaryArn"`
}

type instanceProfileXML struct {
	InstanceProfileID string `xml:"InstanceProfileId"`
	Roles             struct {
		Members []roleXML `xml:"member"`
	} `xml:"Roles"`
	InstanceProfileName string `xml:"InstanceProfileName"`
	Path                string `xml:"Path"`
	Arn                 string `xml:"Arn"`
	CreateDate          string `xml:"CreateDate"`
}

type getRoleResponse struct {
	XMLName xml.Name `xml:"https://iam.amazonaws.com/doc/2010-05-08/ GetRoleResponse"`
	Result  struct {
		Role roleXML `xml:"Role"`
	} `xml:"GetRoleResult"`
	ResponseMetadata responseMetadata `xml:"ResponseMetadata"`
}

type getInstanceProfileResponse struct {
	XMLName xml.Name `xml:"https://iam.amazonaws.com/doc/2010-05-08/ GetInstanceProfileResponse"`
	Result  struct {
		InstanceProfile instanceProfileXML `xml:"InstanceProfile"`
	} `xml:"GetInstanceProfileResult"`
	ResponseMetadata responseMetadata `xml:"ResponseMetadata"`
}

type listInstanceProfilesForRoleResponse struct {
	XMLName xml.Name `xml:"https://iam.amazonaws.com/doc/2010-05-08/ ListInstanceProfilesForRoleResponse"`
	Result  struct {
		IsTruncated      bool `xml:"IsTruncated"`
		InstanceProfiles struct {
			Members []instanceProfileXML `xml:"member"`
		} `xml:"InstanceProfiles"`
		Marker string `xml:"Marker,omitempty"`
	} `xml:"ListInstanceProfilesForRoleResult"`
	ResponseMetadata responseMetadata `xml:"ResponseMetadata"`
}

type positionXML struct {
	Line   int `xml:"Line"`
	Column int `xml:"Column"`
}

type statementXML struct {
	SourcePolicyID   string       `xml:"SourcePolicyId"`
	SourcePolicyType string       `xml:"SourcePolicyType"`
	StartPosition    *positionXML `xml:"StartPosition,omitempty"`
	EndPosition      *positionXML `xml:"EndPosition,omitempty"`
}

type statementsXML struct {
	Members []statementXML `xml:"member"`
}

type stringsXML struct {
	Members []string `xml:"member"`
}

type boundaryDecisionXML struct {
	AllowedByPermissionsBoundary bool `xml:"AllowedByPermissionsBoundary"`
}

type resourceResultXML struct {
	EvalResourceName                  string               `xml:"EvalResourceName"`
	EvalResourceDecision              string               `xml:"EvalResourceDecision"`
	MatchedStatements                 statementsXML        `xml:"MatchedStatements"`
	MissingContextValues              stringsXML           `xml:"MissingContextValues"`
	PermissionsBoundaryDecisionDetail *boundaryDecisionXML `xml:"PermissionsBoundaryDecisionDetail,omitempty"`
}

type evaluationResultXML struct {
	EvalActionName                    string                    `xml:"EvalActionName"`
	EvalResourceName                  string                    `xml:"EvalResourceName"`
	EvalDecision                      string                    `xml:"EvalDecision"`
	MatchedStatements                 statementsXML             `xml:"MatchedStatements"`
	MissingContextValues              stringsXML                `xml:"MissingContextValues"`
	OrganizationsDecisionDetail       *organizationsDecisionXML `xml:"OrganizationsDecisionDetail,omitempty"`
	PermissionsBoundaryDecisionDetail *boundaryDecisionXML      `xml:"PermissionsBoundaryDecisionDetail,omitempty"`
	ResourceSpecificResults           struct {
		Members []resourceResultXML `xml:"member"`
	} `xml:"ResourceSpecificResults"`
}

type simulatePrincipalPolicyResponse struct {
	XMLName xml.Name `xml:"https://iam.amazonaws.com/doc/2010-05-08/ SimulatePrincipalPolicyResponse"`
	Result  struct {
		IsTruncated       bool `xml:"IsTruncated"`
		EvaluationResults struct {
			Members []evaluationResultXML `xml:"member"`
		} `xml:"EvaluationResults"`
		Marker string `xml:"Marker,omitempty"`
	} `xml:"SimulatePrincipalPolicyResult"`
	ResponseMetadata responseMetadata `xml:"ResponseMetadata"`
}

type organizationsDecisionXML struct {
	AllowedByOrganizations bool `xml:"AllowedByOrganizations"`
}

type listRolePoliciesResponse struct {
	XMLName xml.Name `xml:"https://iam.amazonaws.com/doc/2010-05-08/ ListRolePoliciesResponse"`
	Result  struct {
		PolicyNames stringsXML `xml:"PolicyNames"`
		IsTruncated bool       `xml:"IsTruncated"`
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
		AttachedPolicies struct {
			Members []attachedPolicyXML `xml:"member"`
		} `xml:"AttachedPolicies"`
		IsTruncated bool   `xml:"IsTruncated"`
		Marker      string `xml:"Marker,omitempty"`
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
