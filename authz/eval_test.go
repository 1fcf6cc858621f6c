package authz

import (
	"reflect"
	"strings"
	"testing"
)

// identity builds a PolicySet from identity documents named p0, p1, ...
func identity(t testing.TB, docs ...string) PolicySet {
	t.Helper()
	var set PolicySet
	for i, d := range docs {
		set.Identity = append(set.Identity, NamedPolicy{Name: "p" + string(rune('0'+i)), Policy: mustPolicy(t, d)})
	}
	return set
}

func withBoundary(t testing.TB, set PolicySet, doc string) PolicySet {
	t.Helper()
	set.Boundary = &NamedPolicy{Name: "boundary", Policy: mustPolicy(t, doc)}
	return set
}

func q(action, resource string, ctx ...string) Question {
	qq := Question{Principal: "arn:aws:iam::111122223333:role/Test", Action: action, Resource: resource}
	if len(ctx) > 0 {
		qq.Context = map[string][]string{}
		for i := 0; i+1 < len(ctx); i += 2 {
			qq.Context[ctx[i]] = append(qq.Context[ctx[i]], ctx[i+1])
		}
	}
	return qq
}

func stmt(s string) string { return `{"Version":"2012-10-17","Statement":[` + s + `]}` }

const (
	allowAll = `{"Effect":"Allow","Action":"*","Resource":"*"}`
	passRole = `{"Sid":"AllowPassingInstanceRole","Effect":"Allow","Action":"iam:PassRole",` +
		`"Resource":"arn:aws:iam::111122223333:role/KarpenterNodeRole-*",` +
		`"Condition":{"StringEquals":{"iam:PassedToService":"ec2.amazonaws.com"}}}`
)

func TestEvaluate(t *testing.T) {
	type want struct {
		allowed, explicit bool
		deniedBy          Denier
		nearMisses        []string
		unsupported       []string
		missing           []string
	}
	for _, tc := range []struct {
		name string
		set  PolicySet
		q    Question
		want want
	}{
		// Explicit deny overrides allow ("Policy evaluation logic").
		{
			name: "explicit deny overrides allow across policies",
			set: identity(t, stmt(allowAll),
				stmt(`{"Sid":"NoUsers","Effect":"Deny","Action":"iam:CreateUser","Resource":"*"}`)),
			q:    q("iam:CreateUser", "arn:aws:iam::111122223333:user/bob"),
			want: want{explicit: true, deniedBy: Denier{Source: DeniedByIdentity, Policy: "p1", Statement: "NoUsers"}},
		},
		{
			name: "deny without Sid is labelled by index",
			set:  identity(t, stmt(allowAll+`,{"Effect":"Deny","Action":"s3:*","Resource":"*"}`)),
			q:    q("s3:GetObject", "arn:aws:s3:::b/k"),
			want: want{explicit: true, deniedBy: Denier{Source: DeniedByIdentity, Policy: "p0", Statement: "#1"}},
		},
		{
			name: "no statement: implicit deny",
			set:  identity(t, stmt(`{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}`)),
			q:    q("s3:PutObject", "arn:aws:s3:::b/k"),
			want: want{},
		},
		{
			name: "no policies at all: implicit deny",
			set:  PolicySet{},
			q:    q("s3:GetObject", "arn:aws:s3:::b/k"),
			want: want{},
		},
		// Permissions boundary: effective permissions are the intersection.
		{
			name: "boundary and identity both allow",
			set: withBoundary(t, identity(t, stmt(`{"Effect":"Allow","Action":["s3:*","iam:*"],"Resource":"*"}`)),
				stmt(`{"Effect":"Allow","Action":["s3:*","cloudwatch:*","ec2:*"],"Resource":"*"}`)),
			q:    q("s3:GetObject", "arn:aws:s3:::b/k"),
			want: want{allowed: true},
		},
		{
			name: "identity allows, boundary does not: implicit deny by boundary",
			set: withBoundary(t, identity(t, stmt(`{"Effect":"Allow","Action":["s3:*","iam:*"],"Resource":"*"}`)),
				stmt(`{"Effect":"Allow","Action":["s3:*","cloudwatch:*","ec2:*"],"Resource":"*"}`)),
			q:    q("iam:CreateUser", "arn:aws:iam::111122223333:user/bob"),
			want: want{deniedBy: Denier{Source: DeniedByBoundary, Policy: "boundary"}},
		},
		{
			name: "boundary allows, identity does not: plain implicit deny",
			set: withBoundary(t, identity(t, stmt(`{"Effect":"Allow","Action":["s3:*","iam:*"],"Resource":"*"}`)),
				stmt(`{"Effect":"Allow","Action":["s3:*","cloudwatch:*","ec2:*"],"Resource":"*"}`)),
			q:    q("ec2:RunInstances", "arn:aws:ec2:us-west-2:111122223333:instance/*"),
			want: want{},
		},
		{
			name: "explicit deny in boundary",
			set: withBoundary(t, identity(t, stmt(allowAll)),
				stmt(allowAll+`,{"Sid":"NoIAM","Effect":"Deny","Action":"iam:*","Resource":"*"}`)),
			q:    q("iam:PassRole", "arn:aws:iam::111122223333:role/X"),
			want: want{explicit: true, deniedBy: Denier{Source: DeniedByBoundary, Policy: "boundary", Statement: "NoIAM"}},
		},
		// NotAction / NotResource.
		{
			name: "Allow with NotAction allows other services",
			set:  identity(t, stmt(`{"Effect":"Allow","NotAction":"iam:*","Resource":"*"}`)),
			q:    q("s3:GetObject", "arn:aws:s3:::b/k"),
			want: want{allowed: true},
		},
		{
			name: "Allow with NotAction does not allow the excluded service",
			set:  identity(t, stmt(`{"Effect":"Allow","NotAction":"iam:*","Resource":"*"}`)),
			q:    q("iam:CreateUser", "arn:aws:iam::111122223333:user/bob"),
			want: want{},
		},
		{
			name: "Allow with NotResource allows other resources",
			set: identity(t, stmt(`{"Effect":"Allow","Action":"s3:*",`+
				`"NotResource":["arn:aws:s3:::HRBucket/Payroll","arn:aws:s3:::HRBucket/Payroll/*"]}`)),
			q:    q("s3:GetObject", "arn:aws:s3:::HRBucket/Reviews/a"),
			want: want{allowed: true},
		},
		{
			name: "Allow with NotResource does not allow the excluded resource",
			set: identity(t, stmt(`{"Effect":"Allow","Action":"s3:*",`+
				`"NotResource":["arn:aws:s3:::HRBucket/Payroll","arn:aws:s3:::HRBucket/Payroll/*"]}`)),
			q:    q("s3:GetObject", "arn:aws:s3:::HRBucket/Payroll/2024/jan"),
			want: want{},
		},
		{
			name: "Deny with NotResource denies everything else",
			set:  identity(t, stmt(allowAll+`,{"Sid":"OnlyB","Effect":"Deny","Action":"s3:*","NotResource":"arn:aws:s3:::b/*"}`)),
			q:    q("s3:GetObject", "arn:aws:s3:::other/k"),
			want: want{explicit: true, deniedBy: Denier{Source: DeniedByIdentity, Policy: "p0", Statement: "OnlyB"}},
		},
		// Case rules and wildcards.
		{
			name: "actions are case-insensitive",
			set:  identity(t, stmt(`{"Effect":"Allow","Action":"EC2:runInstances","Resource":"*"}`)),
			q:    q("ec2:RunInstances", "arn:aws:ec2:us-west-2:111122223333:instance/*"),
			want: want{allowed: true},
		},
		{
			name: "service wildcard",
			set:  identity(t, stmt(`{"Effect":"Allow","Action":"iam:*","Resource":"*"}`)),
			q:    q("IAM:PassRole", "arn:aws:iam::111122223333:role/X"),
			want: want{allowed: true},
		},
		{
			name: "? matches one character in actions",
			set:  identity(t, stmt(`{"Effect":"Allow","Action":"iam:?assRole","Resource":"*"}`)),
			q:    q("iam:PassRole", "arn:aws:iam::111122223333:role/X"),
			want: want{allowed: true},
		},
		{
			name: "resources are case-sensitive",
			set:  identity(t, stmt(`{"Effect":"Allow","Action":"iam:PassRole","Resource":"arn:aws:iam::111122223333:role/KarpenterNodeRole-*"}`)),
			q:    q("iam:PassRole", "arn:aws:iam::111122223333:role/karpenternoderole-demo"),
			want: want{nearMisses: []string{"role/KarpenterNodeRole-*"}},
		},
		{
			name: "resource * spans slashes",
			set:  identity(t, stmt(`{"Effect":"Allow","Action":"iam:PassRole","Resource":"arn:aws:iam::111122223333:role/*"}`)),
			q:    q("iam:PassRole", "arn:aws:iam::111122223333:role/team/KarpenterNodeRole-team"),
			want: want{allowed: true},
		},
		{
			name: "a pattern without path does not cover a role with a path",
			set:  identity(t, stmt(passRole)),
			q:    q("iam:PassRole", "arn:aws:iam::111122223333:role/team/KarpenterNodeRole-team", "iam:PassedToService", "ec2.amazonaws.com"),
			want: want{nearMisses: []string{"role/KarpenterNodeRole-*"}},
		},
		{
			name: "policy variables match only literally",
			set:  identity(t, stmt(`{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/${aws:username}/*"}`)),
			q:    q("s3:GetObject", "arn:aws:s3:::b/bob/k"),
			want: want{nearMisses: []string{"arn:aws:s3:::b/${aws:username}/*"}},
		},
		{
			name: "statement without Resource matches nothing",
			set:  identity(t, stmt(`{"Effect":"Allow","Action":"s3:GetObject"}`)),
			q:    q("s3:GetObject", "arn:aws:s3:::b/k"),
			want: want{},
		},
		// PassRole with iam:PassedToService.
		{
			name: "PassRole to EC2 allowed",
			set:  identity(t, stmt(passRole)),
			q:    q("iam:PassRole", "arn:aws:iam::111122223333:role/KarpenterNodeRole-demo", "iam:PassedToService", "ec2.amazonaws.com"),
			want: want{allowed: true},
		},
		{
			name: "PassRole to another service denied",
			set:  identity(t, stmt(passRole)),
			q:    q("iam:PassRole", "arn:aws:iam::111122223333:role/KarpenterNodeRole-demo", "iam:PassedToService", "lambda.amazonaws.com"),
			want: want{nearMisses: []string{"role/KarpenterNodeRole-*"}},
		},
		{
			name: "PassRole without PassedToService denied and reported missing",
			set:  identity(t, stmt(passRole)),
			q:    q("iam:PassRole", "arn:aws:iam::111122223333:role/KarpenterNodeRole-demo"),
			want: want{nearMisses: []string{"role/KarpenterNodeRole-*"}, missing: []string{"iam:PassedToService"}},
		},
		{
			name: "condition keys are case-insensitive",
			set:  identity(t, stmt(`{"Effect":"Allow","Action":"iam:PassRole","Resource":"*","Condition":{"StringEquals":{"IAM:passedToService":"ec2.amazonaws.com"}}}`)),
			q:    q("iam:PassRole", "arn:aws:iam::111122223333:role/X", "iam:PassedToService", "ec2.amazonaws.com"),
			want: want{allowed: true},
		},
		{
			name: "condition values are case-sensitive",
			set:  identity(t, stmt(`{"Effect":"Allow","Action":"iam:PassRole","Resource":"*","Condition":{"StringEquals":{"iam:PassedToService":"EC2.amazonaws.com"}}}`)),
			q:    q("iam:PassRole", "arn:aws:iam::111122223333:role/X", "iam:PassedToService", "ec2.amazonaws.com"),
			want: want{nearMisses: []string{"*"}},
		},
		{
			name: "StringEqualsIgnoreCase ignores case",
			set:  identity(t, stmt(`{"Effect":"Allow","Action":"iam:PassRole","Resource":"*","Condition":{"StringEqualsIgnoreCase":{"iam:PassedToService":"EC2.amazonaws.com"}}}`)),
			q:    q("iam:PassRole", "arn:aws:iam::111122223333:role/X", "iam:PassedToService", "ec2.amazonaws.com"),
			want: want{allowed: true},
		},
		// Condition logic.
		{
			name: "values of one key are OR-ed",
			set:  identity(t, stmt(`{"Effect":"Allow","Action":"ec2:RunInstances","Resource":"*","Condition":{"StringEquals":{"aws:RequestedRegion":["us-east-1","us-west-2"]}}}`)),
			q:    q("ec2:RunInstances", "arn:aws:ec2:us-west-2:111122223333:instance/*", "aws:RequestedRegion", "us-west-2"),
			want: want{allowed: true},
		},
		{
			name: "keys of one operator are AND-ed",
			set: identity(t, stmt(`{"Effect":"Allow","Action":"ec2:RunInstances","Resource":"*","Condition":{"StringEquals":{`+
				`"aws:RequestTag/a":"1","aws:RequestTag/b":"2"}}}`)),
			q:    q("ec2:RunInstances", "arn:aws:ec2:us-west-2:111122223333:instance/*", "aws:RequestTag/a", "1", "aws:RequestTag/b", "3"),
			want: want{nearMisses: []string{"*"}},
		},
		{
			name: "operators are AND-ed",
			set: identity(t, stmt(`{"Effect":"Allow","Action":"ec2:RunInstances","Resource":"*","Condition":{`+
				`"StringEquals":{"aws:RequestTag/a":"1"},"StringLike":{"aws:RequestTag/b":"x*"}}}`)),
			q:    q("ec2:RunInstances", "arn:aws:ec2:us-west-2:111122223333:instance/*", "aws:RequestTag/a", "1"),
			want: want{nearMisses: []string{"*"}, missing: []string{"aws:RequestTag/b"}},
		},
		{
			name: "StringNotEquals: none of the values may match",
			set: identity(t, stmt(allowAll+`,{"Sid":"Regions","Effect":"Deny","Action":"*","Resource":"*",`+
				`"Condition":{"StringNotEquals":{"aws:RequestedRegion":["us-east-1","us-west-2"]}}}`)),
			q:    q("ec2:RunInstances", "arn:aws:ec2:us-west-2:111122223333:instance/*", "aws:RequestedRegion", "us-west-2"),
			want: want{allowed: true},
		},
		{
			name: "StringNotEquals: a value matching none denies",
			set: identity(t, stmt(allowAll+`,{"Sid":"Regions","Effect":"Deny","Action":"*","Resource":"*",`+
				`"Condition":{"StringNotEquals":{"aws:RequestedRegion":["us-east-1","us-west-2"]}}}`)),
			q:    q("ec2:RunInstances", "arn:aws:ec2:eu-west-1:111122223333:instance/*", "aws:RequestedRegion", "eu-west-1"),
			want: want{explicit: true, deniedBy: Denier{Source: DeniedByIdentity, Policy: "p0", Statement: "Regions"}},
		},
		{
			// IAM docs, "Condition operators": if the key is not present
			// and the condition requires it not to match (StringNotLike,
			// ArnNotLike...), the condition is true.
			name: "negated operator on a missing key is true",
			set: identity(t, stmt(allowAll+`,{"Sid":"Regions","Effect":"Deny","Action":"*","Resource":"*",`+
				`"Condition":{"StringNotEquals":{"aws:RequestedRegion":"us-west-2"}}}`)),
			q:    q("iam:GetInstanceProfile", "arn:aws:iam::111122223333:instance-profile/x"),
			want: want{explicit: true, deniedBy: Denier{Source: DeniedByIdentity, Policy: "p0", Statement: "Regions"}, missing: []string{"aws:RequestedRegion"}},
		},
		{
			name: "positive operator on a missing key is false",
			set:  identity(t, stmt(`{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringLike":{"aws:RequestTag/karpenter.sh/nodepool":"*"}}}`)),
			q:    q("ec2:CreateFleet", "arn:aws:ec2:us-west-2:111122223333:fleet/*"),
			want: want{nearMisses: []string{"*"}, missing: []string{"aws:RequestTag/karpenter.sh/nodepool"}},
		},
		{
			name: "StringLike * in a value spans slashes",
			set:  identity(t, stmt(`{"Effect":"Allow","Action":"s3:ListBucket","Resource":"*","Condition":{"StringLike":{"s3:prefix":"home/*"}}}`)),
			q:    q("s3:ListBucket", "arn:aws:s3:::b", "s3:prefix", "home/bob/photos/2024"),
			want: want{allowed: true},
		},
		{
			name: "StringNotLike",
			set: identity(t, stmt(allowAll+`,{"Sid":"NoTmp","Effect":"Deny","Action":"s3:*","Resource":"*",`+
				`"Condition":{"StringNotLike":{"s3:prefix":["home/*","shared/*"]}}}`)),
			q:    q("s3:ListBucket", "arn:aws:s3:::b", "s3:prefix", "tmp/x"),
			want: want{explicit: true, deniedBy: Denier{Source: DeniedByIdentity, Policy: "p0", Statement: "NoTmp"}},
		},
		// IfExists ("...IfExists condition operators" example).
		{
			name: "IfExists with the key absent is true",
			set: identity(t, stmt(`{"Effect":"Allow","Action":"ec2:*","Resource":"*",`+
				`"Condition":{"StringLikeIfExists":{"ec2:InstanceType":["t1.*","t2.*","m3.*"]}}}`)),
			q:    q("ec2:CreateFleet", "arn:aws:ec2:us-west-2:111122223333:fleet/*"),
			want: want{allowed: true, missing: []string{"ec2:InstanceType"}},
		},
		{
			name: "IfExists with the key matching",
			set: identity(t, stmt(`{"Effect":"Allow","Action":"ec2:*","Resource":"*",`+
				`"Condition":{"StringLikeIfExists":{"ec2:InstanceType":["t1.*","t2.*","m3.*"]}}}`)),
			q:    q("ec2:RunInstances", "arn:aws:ec2:us-west-2:111122223333:instance/*", "ec2:InstanceType", "t2.micro"),
			want: want{allowed: true},
		},
		{
			name: "IfExists with the key not matching",
			set: identity(t, stmt(`{"Effect":"Allow","Action":"ec2:*","Resource":"*",`+
				`"Condition":{"StringLikeIfExists":{"ec2:InstanceType":["t1.*","t2.*","m3.*"]}}}`)),
			q:    q("ec2:RunInstances", "arn:aws:ec2:us-west-2:111122223333:instance/*", "ec2:InstanceType", "m5.large"),
			want: want{nearMisses: []string{"*"}},
		},
		// Set operators.
		{
			name: "ForAllValues with the key missing is true",
			set: identity(t, stmt(`{"Effect":"Allow","Action":"ec2:CreateTags","Resource":"*",`+
				`"Condition":{"ForAllValues:StringEquals":{"aws:TagKeys":["karpenter.sh/nodeclaim","Name"]}}}`)),
			q:    q("ec2:CreateTags", "arn:aws:ec2:us-west-2:111122223333:instance/i-1"),
			want: want{allowed: true, missing: []string{"aws:TagKeys"}},
		},
		{
			name: "ForAllValues: every request value is in the set",
			set: identity(t, stmt(`{"Effect":"Allow","Action":"ec2:CreateTags","Resource":"*",`+
				`"Condition":{"ForAllValues:StringEquals":{"aws:TagKeys":["karpenter.sh/nodeclaim","Name"]}}}`)),
			q:    q("ec2:CreateTags", "arn:aws:ec2:us-west-2:111122223333:instance/i-1", "aws:TagKeys", "Name", "aws:TagKeys", "karpenter.sh/nodeclaim"),
			want: want{allowed: true},
		},
		{
			name: "ForAllValues: one request value outside the set",
			set: identity(t, stmt(`{"Effect":"Allow","Action":"ec2:CreateTags","Resource":"*",`+
				`"Condition":{"ForAllValues:StringEquals":{"aws:TagKeys":["karpenter.sh/nodeclaim","Name"]}}}`)),
			q:    q("ec2:CreateTags", "arn:aws:ec2:us-west-2:111122223333:instance/i-1", "aws:TagKeys", "Name", "aws:TagKeys", "Owner"),
			want: want{nearMisses: []string{"*"}},
		},
		{
			name: "ForAnyValue with the key missing is false",
			set: identity(t, stmt(`{"Effect":"Allow","Action":"ec2:CreateTags","Resource":"*",`+
				`"Condition":{"ForAnyValue:StringEquals":{"aws:TagKeys":["Name"]}}}`)),
			q:    q("ec2:CreateTags", "arn:aws:ec2:us-west-2:111122223333:instance/i-1"),
			want: want{nearMisses: []string{"*"}, missing: []string{"aws:TagKeys"}},
		},
		{
			name: "ForAnyValue: one request value in the set",
			set: identity(t, stmt(`{"Effect":"Allow","Action":"ec2:CreateTags","Resource":"*",`+
				`"Condition":{"ForAnyValue:StringLike":{"aws:TagKeys":["Na*"]}}}`)),
			q:    q("ec2:CreateTags", "arn:aws:ec2:us-west-2:111122223333:instance/i-1", "aws:TagKeys", "Owner", "aws:TagKeys", "Name"),
			want: want{allowed: true},
		},
		{
			name: "ForAllValues with a negated operator",
			set: identity(t, stmt(allowAll+`,{"Sid":"NoAWSTags","Effect":"Deny","Action":"*","Resource":"*",`+
				`"Condition":{"ForAnyValue:StringLike":{"aws:TagKeys":"aws:*"}}},`+
				`{"Sid":"OnlyOwner","Effect":"Deny","Action":"*","Resource":"*",`+
				`"Condition":{"ForAllValues:StringNotEquals":{"aws:TagKeys":"Owner"}}}`)),
			q:    q("ec2:CreateTags", "arn:aws:ec2:us-west-2:111122223333:instance/i-1", "aws:TagKeys", "Name", "aws:TagKeys", "Team"),
			want: want{explicit: true, deniedBy: Denier{Source: DeniedByIdentity, Policy: "p0", Statement: "OnlyOwner"}},
		},
		// Null and Bool.
		{
			name: "Null true: key absent",
			set: identity(t, stmt(allowAll+`,{"Sid":"NeedMFA","Effect":"Deny","Action":"*","Resource":"*",`+
				`"Condition":{"Null":{"aws:MultiFactorAuthAge":"true"}}}`)),
			q:    q("s3:GetObject", "arn:aws:s3:::b/k"),
			want: want{explicit: true, deniedBy: Denier{Source: DeniedByIdentity, Policy: "p0", Statement: "NeedMFA"}},
		},
		{
			name: "Null true: key present",
			set: identity(t, stmt(allowAll+`,{"Sid":"NeedMFA","Effect":"Deny","Action":"*","Resource":"*",`+
				`"Condition":{"Null":{"aws:MultiFactorAuthAge":"true"}}}`)),
			q:    q("s3:GetObject", "arn:aws:s3:::b/k", "aws:MultiFactorAuthAge", "30"),
			want: want{allowed: true},
		},
		{
			name: "Null false requires the key",
			set:  identity(t, stmt(`{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"Null":{"aws:RequestTag/team":false}}}`)),
			q:    q("ec2:RunInstances", "arn:aws:ec2:us-west-2:111122223333:instance/*"),
			want: want{nearMisses: []string{"*"}},
		},
		{
			name: "Bool false denies insecure transport",
			set: identity(t, stmt(allowAll+`,{"Sid":"TLS","Effect":"Deny","Action":"*","Resource":"*",`+
				`"Condition":{"Bool":{"aws:SecureTransport":false}}}`)),
			q:    q("s3:GetObject", "arn:aws:s3:::b/k", "aws:SecureTransport", "false"),
			want: want{explicit: true, deniedBy: Denier{Source: DeniedByIdentity, Policy: "p0", Statement: "TLS"}},
		},
		{
			name: "Bool true matches case-insensitively",
			set:  identity(t, stmt(`{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"Bool":{"aws:MultiFactorAuthPresent":"true"}}}`)),
			q:    q("s3:GetObject", "arn:aws:s3:::b/k", "aws:MultiFactorAuthPresent", "True"),
			want: want{allowed: true},
		},
		// ARN, numeric, date, IP.
		{
			name: "ArnLike matches component-wise",
			set: identity(t, stmt(`{"Effect":"Allow","Action":"*","Resource":"*",`+
				`"Condition":{"ArnLike":{"aws:SourceArn":"arn:aws:ec2:*:111122223333:instance/*"}}}`)),
			q:    q("s3:GetObject", "arn:aws:s3:::b/k", "aws:SourceArn", "arn:aws:ec2:us-west-2:111122223333:instance/i-1"),
			want: want{allowed: true},
		},
		{
			name: "ArnLike: * does not cross a colon between components",
			set: identity(t, stmt(`{"Effect":"Allow","Action":"*","Resource":"*",`+
				`"Condition":{"ArnEquals":{"aws:SourceArn":"arn:aws:ec2:*:instance/*"}}}`)),
			q:    q("s3:GetObject", "arn:aws:s3:::b/k", "aws:SourceArn", "arn:aws:ec2:us-west-2:111122223333:instance/i-1"),
			want: want{nearMisses: []string{"*"}},
		},
		{
			name: "ArnNotLike",
			set: identity(t, stmt(allowAll+`,{"Sid":"OwnAccount","Effect":"Deny","Action":"*","Resource":"*",`+
				`"Condition":{"ArnNotLike":{"aws:SourceArn":"arn:aws:*:*:111122223333:*"}}}`)),
			q:    q("s3:GetObject", "arn:aws:s3:::b/k", "aws:SourceArn", "arn:aws:sqs:us-west-2:444455556666:q"),
			want: want{explicit: true, deniedBy: Denier{Source: DeniedByIdentity, Policy: "p0", Statement: "OwnAccount"}},
		},
		{
			name: "NumericLessThanEquals",
			set:  identity(t, stmt(`{"Effect":"Allow","Action":"s3:ListBucket","Resource":"*","Condition":{"NumericLessThanEquals":{"s3:max-keys":"10"}}}`)),
			q:    q("s3:ListBucket", "arn:aws:s3:::b", "s3:max-keys", "10"),
			want: want{allowed: true},
		},
		{
			name: "NumericLessThan fails",
			set:  identity(t, stmt(`{"Effect":"Allow","Action":"s3:ListBucket","Resource":"*","Condition":{"NumericLessThan":{"s3:max-keys":10}}}`)),
			q:    q("s3:ListBucket", "arn:aws:s3:::b", "s3:max-keys", "11"),
			want: want{nearMisses: []string{"*"}},
		},
		{
			name: "DateLessThan",
			set:  identity(t, stmt(`{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"DateLessThan":{"aws:CurrentTime":"2030-01-01T00:00:00Z"}}}`)),
			q:    q("s3:GetObject", "arn:aws:s3:::b/k", "aws:CurrentTime", "2026-06-01T12:00:00Z"),
			want: want{allowed: true},
		},
		{
			name: "DateGreaterThan with epoch seconds",
			set:  identity(t, stmt(`{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"DateGreaterThan":{"aws:EpochTime":"1700000000"}}}`)),
			q:    q("s3:GetObject", "arn:aws:s3:::b/k", "aws:EpochTime", "1600000000"),
			want: want{nearMisses: []string{"*"}},
		},
		{
			name: "IpAddress",
			set:  identity(t, stmt(`{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":["203.0.113.0/24","2001:db8::/32"]}}}`)),
			q:    q("s3:GetObject", "arn:aws:s3:::b/k", "aws:SourceIp", "203.0.113.7"),
			want: want{allowed: true},
		},
		{
			name: "NotIpAddress",
			set: identity(t, stmt(allowAll+`,{"Sid":"Office","Effect":"Deny","Action":"*","Resource":"*",`+
				`"Condition":{"NotIpAddress":{"aws:SourceIp":"203.0.113.0/24"}}}`)),
			q:    q("s3:GetObject", "arn:aws:s3:::b/k", "aws:SourceIp", "198.51.100.1"),
			want: want{explicit: true, deniedBy: Denier{Source: DeniedByIdentity, Policy: "p0", Statement: "Office"}},
		},
		// Unsupported operators never match.
		{
			name: "unknown operator in an Allow does not allow",
			set:  identity(t, stmt(`{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringSoundsLike":{"aws:username":"bob"}}}`)),
			q:    q("s3:GetObject", "arn:aws:s3:::b/k", "aws:username", "bob"),
			want: want{nearMisses: []string{"*"}, unsupported: []string{"StringSoundsLike"}},
		},
		{
			name: "unknown operator in a Deny does not deny, and is reported",
			set: identity(t, stmt(allowAll+`,{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"ForSomeValues:StringEquals":{"aws:TagKeys":"x"}}},`+
				`{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"NullIfExists":{"aws:TagKeys":"true"}}}`)),
			q:    q("s3:GetObject", "arn:aws:s3:::b/k"),
			want: want{allowed: true, unsupported: []string{"ForSomeValues:StringEquals", "NullIfExists"}, missing: nil},
		},
		// Near misses.
		{
			name: "near misses are shortened, deduplicated and capped",
			set: identity(t,
				stmt(`{"Effect":"Allow","Action":"iam:PassRole","Resource":["arn:aws:iam::111122223333:role/A-*","arn:aws:iam::111122223333:role/B-*"]},`+
					`{"Effect":"Allow","Action":"iam:*","Resource":["arn:aws:iam::111122223333:role/A-*","arn:aws:iam::111122223333:role/C"]},`+
					`{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:iam::111122223333:role/NotThisAction"}`),
				stmt(`{"Effect":"Allow","Action":"iam:PassRole","Resource":["arn:aws:iam::111122223333:role/D","arn:aws:iam::111122223333:role/E","arn:aws:iam::111122223333:role/F"]}`)),
			q:    q("iam:PassRole", "arn:aws:iam::111122223333:role/Z"),
			want: want{nearMisses: []string{"role/A-*", "role/B-*", "role/C", "role/D", "role/E"}},
		},
		{
			name: "non-IAM near misses keep the full ARN",
			set:  identity(t, stmt(`{"Effect":"Allow","Action":"ec2:RunInstances","Resource":"arn:aws:ec2:us-east-1:*:instance/*"}`)),
			q:    q("ec2:RunInstances", "arn:aws:ec2:us-west-2:111122223333:instance/*"),
			want: want{nearMisses: []string{"arn:aws:ec2:us-east-1:*:instance/*"}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := Evaluate(tc.set, tc.q)
			got := want{d.Allowed, d.Explicit, d.DeniedBy, d.NearMisses, d.Unsupported, d.MissingContext}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Evaluate(%s %s %v)\n got %+v\nwant %+v", tc.q.Action, tc.q.Resource, tc.q.Context, got, tc.want)
			}
			if d.Allowed && d.Reason() != "allowed" {
				t.Errorf("Reason() = %q for an allowed decision", d.Reason())
			}
		})
	}
}

func TestEvaluateUnqualifiedMultivaluedKey(t *testing.T) {
	// Without ForAnyValue/ForAllValues, a condition on a multivalued key
	// does not match whatever the values (as IAM is reported to evaluate
	// it), and the decision says the policy needs a set operator.
	pos := identity(t, stmt(`{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEquals":{"aws:TagKeys":"Name"}}}`))
	for _, keys := range [][]string{{"Owner", "Name"}, {"Name"}} {
		args := []string{}
		for _, k := range keys {
			args = append(args, "aws:TagKeys", k)
		}
		d := Evaluate(pos, q("ec2:CreateTags", "r", args...))
		if d.Allowed {
			t.Errorf("StringEquals aws:TagKeys without a set operator allowed %v: %+v", keys, d)
		}
		if !reflect.DeepEqual(d.NeedsSetOperator, []string{"StringEquals aws:TagKeys"}) {
			t.Errorf("NeedsSetOperator = %v, want [StringEquals aws:TagKeys]", d.NeedsSetOperator)
		}
		if !strings.Contains(d.Reason(), "ForAnyValue") {
			t.Errorf("Reason() = %q does not name the set operators", d.Reason())
		}
	}
	neg := identity(t, stmt(`{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringNotEquals":{"aws:TagKeys":"Name"}}}`))
	if d := Evaluate(neg, q("ec2:CreateTags", "r", "aws:TagKeys", "Owner", "aws:TagKeys", "Team")); d.Allowed {
		t.Errorf("StringNotEquals aws:TagKeys without a set operator allowed: %+v", d)
	}
	// A Deny written the same way does not match either.
	deny := identity(t, stmt(`{"Effect":"Allow","Action":"*","Resource":"*"}`),
		stmt(`{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"StringEquals":{"aws:TagKeys":"Name"}}}`))
	if d := Evaluate(deny, q("ec2:CreateTags", "r", "aws:TagKeys", "Name")); !d.Allowed {
		t.Errorf("Deny with StringEquals aws:TagKeys matched: %+v", d)
	}
	// With a set operator the same values match.
	set := identity(t, stmt(`{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"ForAnyValue:StringEquals":{"aws:TagKeys":"Name"}}}`))
	if d := Evaluate(set, q("ec2:CreateTags", "r", "aws:TagKeys", "Owner", "aws:TagKeys", "Name")); !d.Allowed || len(d.NeedsSetOperator) != 0 {
		t.Errorf("ForAnyValue:StringEquals: %+v", d)
	}
}

func TestEvaluateKnownAbsentKeys(t *testing.T) {
	// A question that states the request's tags in full: a condition on a
	// tag it does not carry tests an absent key, which is not "missing".
	set := identity(t, stmt(`{"Effect":"Allow","Action":"ec2:RunInstances","Resource":"*","Condition":{"StringEquals":{"aws:RequestTag/kubernetes.io/cluster/other":"owned"}}}`))
	base := q("ec2:RunInstances", "arn:aws:ec2:us-west-2:111122223333:instance/*", "aws:RequestTag/kubernetes.io/cluster/demo", "owned")
	d := Evaluate(set, base)
	if d.Allowed || !reflect.DeepEqual(d.MissingContext, []string{"aws:RequestTag/kubernetes.io/cluster/other"}) {
		t.Fatalf("without Complete: %+v, want denied with the key missing", d)
	}
	known := base
	known.Complete = []string{"aws:RequestTag/", "aws:TagKeys"}
	d = Evaluate(set, known)
	if d.Allowed || len(d.MissingContext) != 0 {
		t.Errorf("with Complete: %+v, want denied and nothing missing", d)
	}
	// Negated operators on a known-absent key hold, as on any absent key.
	neg := identity(t, stmt(`{"Effect":"Allow","Action":"ec2:RunInstances","Resource":"*","Condition":{"StringNotEquals":{"aws:RequestTag/Team":"x"},"StringEquals":{"aws:SourceIp":"10.0.0.1"}}}`))
	d = Evaluate(neg, known)
	if !reflect.DeepEqual(d.MissingContext, []string{"aws:SourceIp"}) {
		t.Errorf("MissingContext = %v, want only aws:SourceIp (nobody here can know it)", d.MissingContext)
	}
	// Complete is part of the question's identity.
	if base.Key() == known.Key() || base.BatchKey() == known.BatchKey() {
		t.Errorf("Key/BatchKey ignore Complete")
	}
}

func TestEvaluateReasons(t *testing.T) {
	set := withBoundary(t, identity(t, stmt(passRole), stmt(`{"Sid":"DenyPassAdminRoles","Effect":"Deny","Action":"iam:PassRole","Resource":"arn:aws:iam::111122223333:role/Admin*"}`)),
		stmt(`{"Effect":"Allow","Action":"ec2:*","Resource":"*"}`))
	ec2 := []string{"iam:PassedToService", "ec2.amazonaws.com"}
	d := Evaluate(set, q("iam:PassRole", "arn:aws:iam::111122223333:role/AdminNodeRole", ec2...))
	if want := `explicitly denied by identity policy "p1" statement "DenyPassAdminRoles"`; d.Reason() != want {
		t.Errorf("Reason = %q, want %q", d.Reason(), want)
	}
	d = Evaluate(set, q("iam:PassRole", "arn:aws:iam::111122223333:role/KarpenterNodeRole-demo", ec2...))
	if want := `implicitly denied: the permissions boundary "boundary" does not allow it`; d.Reason() != want {
		t.Errorf("Reason = %q, want %q", d.Reason(), want)
	}
	set.Boundary = nil
	d = Evaluate(set, q("iam:PassRole", "arn:aws:iam::111122223333:role/OtherNodeRole", ec2...))
	if want := `no statement allows it (policy statements match role/KarpenterNodeRole-* only)`; d.Reason() != want {
		t.Errorf("Reason = %q, want %q", d.Reason(), want)
	}
}

func TestTrustAllows(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		service   string
		want      bool
	}{
		{"ec2 trusted", trustEC2, "ec2.amazonaws.com", true},
		{"service in a list", `{"Statement":[{"Effect":"Allow","Principal":{"Service":["eks.amazonaws.com","ec2.amazonaws.com"]},"Action":["sts:AssumeRole","sts:TagSession"]}]}`, "ec2.amazonaws.com", true},
		{"china principal", `{"Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com.cn"},"Action":"sts:AssumeRole"}]}`, "ec2.amazonaws.com.cn", true},
		{"other service only", `{"Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}`, "ec2.amazonaws.com", false},
		{"wrong action", `{"Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:TagSession"}]}`, "ec2.amazonaws.com", false},
		{"action wildcard", `{"Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:*"}]}`, "ec2.amazonaws.com", true},
		{"AWS principal only", `{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"sts:AssumeRole"}]}`, "ec2.amazonaws.com", false},
		{"federated only", `{"Statement":[{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::111122223333:oidc-provider/x"},"Action":"sts:AssumeRoleWithWebIdentity"}]}`, "ec2.amazonaws.com", false},
		{"anyone", `{"Statement":[{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole"}]}`, "ec2.amazonaws.com", true},
		{"conditions are not evaluated on Allow", `{"Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole","Condition":{"StringEquals":{"aws:SourceAccount":"111122223333"}}}]}`, "ec2.amazonaws.com", true},
		{"explicit deny", trustEC2[:len(trustEC2)-2] + `,{"Effect":"Deny","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}`, "ec2.amazonaws.com", false},
		{"conditional deny is not counted", trustEC2[:len(trustEC2)-2] + `,{"Effect":"Deny","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole","Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}`, "ec2.amazonaws.com", true},
		{"NotPrincipal deny spares the named service", trustEC2[:len(trustEC2)-2] + `,{"Effect":"Deny","NotPrincipal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}`, "ec2.amazonaws.com", true},
		{"NotPrincipal deny hits other services", `{"Statement":[{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole"},{"Effect":"Deny","NotPrincipal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}`, "ec2.amazonaws.com", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := TrustAllows(mustPolicy(t, tc.doc), tc.service, "sts:AssumeRole"); got != tc.want {
				t.Errorf("TrustAllows = %v, want %v", got, tc.want)
			}
		})
	}
	if TrustAllows(nil, "ec2.amazonaws.com", "sts:AssumeRole") {
		t.Error("a nil trust policy trusts EC2")
	}
}

// karpenterControllerPolicy is Karpenter's controller policy (from its
// getting-started CloudFormation template, v1), for cluster "demo" in
// us-west-2 and account 111122223333.
var karpenterControllerPolicy = strings.NewReplacer(
	"${Partition}", "aws", "${Region}", "us-west-2", "${Account}", "111122223333", "${Cluster}", "demo",
).Replace(`{
  "Version": "2012-10-17",
  "Statement": [
    {"Sid": "AllowScopedEC2InstanceAccessActions", "Effect": "Allow",
     "Resource": ["arn:${Partition}:ec2:${Region}::image/*", "arn:${Partition}:ec2:${Region}::snapshot/*",
       "arn:${Partition}:ec2:${Region}:*:security-group/*", "arn:${Partition}:ec2:${Region}:*:subnet/*",
       "arn:${Partition}:ec2:${Region}:*:capacity-reservation/*"],
     "Action": ["ec2:RunInstances", "ec2:CreateFleet"]},
    {"Sid": "AllowScopedEC2LaunchTemplateAccessActions", "Effect": "Allow",
     "Resource": "arn:${Partition}:ec2:${Region}:*:launch-template/*",
     "Action": ["ec2:RunInstances", "ec2:CreateFleet"],
     "Condition": {"StringEquals": {"aws:ResourceTag/kubernetes.io/cluster/${Cluster}": "owned"},
                   "StringLike": {"aws:ResourceTag/karpenter.sh/nodepool": "*"}}},
    {"Sid": "AllowScopedEC2InstanceActionsWithTags", "Effect": "Allow",
     "Resource": ["arn:${Partition}:ec2:${Region}:*:fleet/*", "arn:${Partition}:ec2:${Region}:*:instance/*",
       "arn:${Partition}:ec2:${Region}:*:volume/*", "arn:${Partition}:ec2:${Region}:*:network-interface/*",
       "arn:${Partition}:ec2:${Region}:*:launch-template/*", "arn:${Partition}:ec2:${Region}:*:spot-instances-request/*"],
     "Action": ["ec2:RunInstances", "ec2:CreateFleet", "ec2:CreateLaunchTemplate"],
     "Condition": {"StringEquals": {"aws:RequestTag/kubernetes.io/cluster/${Cluster}": "owned",
                                    "aws:RequestTag/eks:eks-cluster-name": "${Cluster}"},
                   "StringLike": {"aws:RequestTag/karpenter.sh/nodepool": "*"}}},
    {"Sid": "AllowScopedResourceCreationTagging", "Effect": "Allow",
     "Resource": ["arn:${Partition}:ec2:${Region}:*:fleet/*", "arn:${Partition}:ec2:${Region}:*:instance/*",
       "arn:${Partition}:ec2:${Region}:*:volume/*", "arn:${Partition}:ec2:${Region}:*:network-interface/*",
       "arn:${Partition}:ec2:${Region}:*:launch-template/*", "arn:${Partition}:ec2:${Region}:*:spot-instances-request/*"],
     "Action": "ec2:CreateTags",
     "Condition": {"StringEquals": {"aws:RequestTag/kubernetes.io/cluster/${Cluster}": "owned",
                                    "aws:RequestTag/eks:eks-cluster-name": "${Cluster}",
                                    "ec2:CreateAction": ["RunInstances", "CreateFleet", "CreateLaunchTemplate"]},
                   "StringLike": {"aws:RequestTag/karpenter.sh/nodepool": "*"}}},
    {"Sid": "AllowScopedResourceTagging", "Effect": "Allow",
     "Resource": "arn:${Partition}:ec2:${Region}:*:instance/*", "Action": "ec2:CreateTags",
     "Condition": {"StringEquals": {"aws:ResourceTag/kubernetes.io/cluster/${Cluster}": "owned"},
                   "StringLike": {"aws:ResourceTag/karpenter.sh/nodepool": "*"},
                   "StringEqualsIfExists": {"aws:RequestTag/eks:eks-cluster-name": "${Cluster}"},
                   "ForAllValues:StringEquals": {"aws:TagKeys": ["eks:eks-cluster-name", "karpenter.sh/nodeclaim", "Name"]}}},
    {"Sid": "AllowScopedDeletion", "Effect": "Allow",
     "Resource": ["arn:${Partition}:ec2:${Region}:*:instance/*", "arn:${Partition}:ec2:${Region}:*:launch-template/*"],
     "Action": ["ec2:TerminateInstances", "ec2:DeleteLaunchTemplate"],
     "Condition": {"StringEquals": {"aws:ResourceTag/kubernetes.io/cluster/${Cluster}": "owned"},
                   "StringLike": {"aws:ResourceTag/karpenter.sh/nodepool": "*"}}},
    {"Sid": "AllowRegionalReadActions", "Effect": "Allow", "Resource": "*",
     "Action": ["ec2:DescribeAvailabilityZones", "ec2:DescribeImages", "ec2:DescribeInstances",
       "ec2:DescribeInstanceTypeOfferings", "ec2:DescribeInstanceTypes", "ec2:DescribeLaunchTemplates",
       "ec2:DescribeSecurityGroups", "ec2:DescribeSpotPriceHistory", "ec2:DescribeSubnets"],
     "Condition": {"StringEquals": {"aws:RequestedRegion": "${Region}"}}},
    {"Sid": "AllowSSMReadActions", "Effect": "Allow",
     "Resource": "arn:${Partition}:ssm:${Region}::parameter/aws/service/*", "Action": "ssm:GetParameter"},
    {"Sid": "AllowPricingReadActions", "Effect": "Allow", "Resource": "*", "Action": "pricing:GetProducts"},
    {"Sid": "AllowInterruptionQueueActions", "Effect": "Allow",
     "Resource": "arn:${Partition}:sqs:${Region}:${Account}:${Cluster}",
     "Action": ["sqs:DeleteMessage", "sqs:GetQueueUrl", "sqs:ReceiveMessage"]},
    {"Sid": "AllowPassingInstanceRole", "Effect": "Allow",
     "Resource": "arn:${Partition}:iam::${Account}:role/KarpenterNodeRole-*", "Action": "iam:PassRole",
     "Condition": {"StringEquals": {"iam:PassedToService": ["ec2.amazonaws.com", "ec2.amazonaws.com.cn"]}}},
    {"Sid": "AllowScopedInstanceProfileCreationActions", "Effect": "Allow", "Resource": "arn:${Partition}:iam::${Account}:instance-profile/*",
     "Action": ["iam:CreateInstanceProfile"],
     "Condition": {"StringEquals": {"aws:RequestTag/kubernetes.io/cluster/${Cluster}": "owned",
                                    "aws:RequestTag/eks:eks-cluster-name": "${Cluster}",
                                    "aws:RequestTag/topology.kubernetes.io/region": "${Region}"},
                   "StringLike": {"aws:RequestTag/karpenter.k8s.aws/ec2nodeclass": "*"}}},
    {"Sid": "AllowScopedInstanceProfileTagActions", "Effect": "Allow", "Resource": "arn:${Partition}:iam::${Account}:instance-profile/*",
     "Action": ["iam:TagInstanceProfile"],
     "Condition": {"StringEquals": {"aws:ResourceTag/kubernetes.io/cluster/${Cluster}": "owned",
                                    "aws:ResourceTag/topology.kubernetes.io/region": "${Region}",
                                    "aws:RequestTag/kubernetes.io/cluster/${Cluster}": "owned",
                                    "aws:RequestTag/eks:eks-cluster-name": "${Cluster}",
                                    "aws:RequestTag/topology.kubernetes.io/region": "${Region}"},
                   "StringLike": {"aws:ResourceTag/karpenter.k8s.aws/ec2nodeclass": "*",
                                  "aws:RequestTag/karpenter.k8s.aws/ec2nodeclass": "*"}}},
    {"Sid": "AllowScopedInstanceProfileActions", "Effect": "Allow", "Resource": "arn:${Partition}:iam::${Account}:instance-profile/*",
     "Action": ["iam:AddRoleToInstanceProfile", "iam:RemoveRoleFromInstanceProfile", "iam:DeleteInstanceProfile"],
     "Condition": {"StringEquals": {"aws:ResourceTag/kubernetes.io/cluster/${Cluster}": "owned",
                                    "aws:ResourceTag/topology.kubernetes.io/region": "${Region}"},
                   "StringLike": {"aws:ResourceTag/karpenter.k8s.aws/ec2nodeclass": "*"}}},
    {"Sid": "AllowInstanceProfileReadActions", "Effect": "Allow", "Resource": "arn:${Partition}:iam::${Account}:instance-profile/*",
     "Action": "iam:GetInstanceProfile"},
    {"Sid": "AllowAPIServerEndpointDiscovery", "Effect": "Allow",
     "Resource": "arn:${Partition}:eks:${Region}:${Account}:cluster/${Cluster}", "Action": "eks:DescribeCluster"}
  ]
}`)

func benchmarkSet(tb testing.TB) PolicySet {
	return PolicySet{Identity: []NamedPolicy{
		{Name: "arn:aws:iam::111122223333:policy/KarpenterControllerPolicy", Policy: mustPolicy(tb, karpenterControllerPolicy)},
		{Name: "Guardrails", Policy: mustPolicy(tb, stmt(`{"Sid":"DenyPassAdminRoles","Effect":"Deny","Action":"iam:PassRole","Resource":"arn:aws:iam::111122223333:role/Admin*"}`))},
	}}
}

func TestKarpenterControllerPolicyAnswers(t *testing.T) {
	set := benchmarkSet(t)
	for _, tc := range []struct {
		q    Question
		want bool
	}{
		{q("iam:PassRole", "arn:aws:iam::111122223333:role/KarpenterNodeRole-demo", "iam:PassedToService", "ec2.amazonaws.com"), true},
		{q("iam:PassRole", "arn:aws:iam::111122223333:role/AdminNodeRole", "iam:PassedToService", "ec2.amazonaws.com"), false},
		{q("ec2:RunInstances", "arn:aws:ec2:us-west-2:111122223333:instance/*",
			"aws:RequestTag/kubernetes.io/cluster/demo", "owned", "aws:RequestTag/eks:eks-cluster-name", "demo",
			"aws:RequestTag/karpenter.sh/nodepool", "default"), true},
		{q("ec2:RunInstances", "arn:aws:ec2:us-west-2:111122223333:instance/*",
			"aws:RequestTag/kubernetes.io/cluster/other", "owned", "aws:RequestTag/eks:eks-cluster-name", "demo",
			"aws:RequestTag/karpenter.sh/nodepool", "default"), false},
		{q("iam:GetInstanceProfile", "arn:aws:iam::111122223333:instance-profile/x"), true},
	} {
		if d := Evaluate(set, tc.q); d.Allowed != tc.want {
			t.Errorf("%s %s: allowed = %v, want %v (%s)", tc.q.Action, tc.q.Resource, d.Allowed, tc.want, d.Reason())
		}
	}
}

// BenchmarkEvaluate measures one decision against Karpenter's controller
// policy plus a guardrail deny: the PassRole question every EC2NodeClass
// admission asks, and a tagged launch question.
func BenchmarkEvaluate(b *testing.B) {
	set := benchmarkSet(b)
	passRole := q("iam:PassRole", "arn:aws:iam::111122223333:role/KarpenterNodeRole-demo", "iam:PassedToService", "ec2.amazonaws.com")
	launch := q("ec2:CreateFleet", "arn:aws:ec2:us-west-2:111122223333:fleet/*",
		"aws:RequestTag/kubernetes.io/cluster/demo", "owned", "aws:RequestTag/eks:eks-cluster-name", "demo",
		"aws:RequestTag/karpenter.sh/nodepool", "default", "aws:RequestTag/karpenter.k8s.aws/ec2nodeclass", "default",
		"aws:RequestedRegion", "us-west-2")
	launch.Context["aws:TagKeys"] = []string{"kubernetes.io/cluster/demo", "eks:eks-cluster-name", "karpenter.sh/nodepool", "karpenter.k8s.aws/ec2nodeclass"}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		qq := passRole
		if i%2 == 1 {
			qq = launch
		}
		if d := Evaluate(set, qq); !d.Allowed {
			b.Fatalf("%s denied: %s", qq.Action, d.Reason())
		}
	}
}
