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
	EvalActionName                    string               `xml:"EvalActionName"`
	EvalResourceName                  string               `xml:"EvalResourceName"`
	EvalDecision                      string               `xml:"EvalDecision"`
	MatchedStatements                 statementsXML        `xml:"MatchedStatements"`
	MissingContextValues              stringsXML           `xml:"MissingContextValues"`
	PermissionsBoundaryDecisionDetail *boundaryDecisionXML `xml:"PermissionsBoundaryDecisionDetail,omitempty"`
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
