package iamserver

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
)

// KMS's JSON API (X-Amz-Target TrentService.DescribeKey, GetKeyPolicy,
// ListGrants), answered from the snapshot's KMSKeys and Aliases sections,
// with the same fault knobs as the other services (Failure.Action
// "kms:DescribeKey", ..., or "kms:*").
const (
	kmsPrefix       = "kms:"
	KMSDescribeKey  = kmsPrefix + "DescribeKey"
	KMSGetKeyPolicy = kmsPrefix + "GetKeyPolicy"
	KMSListGrants   = kmsPrefix + "ListGrants"
	KMSAll          = kmsPrefix + "*"
)

// serveKMS answers one KMS JSON API request.
func (c *call) serveKMS() {
	target := strings.TrimPrefix(c.r.Header.Get("X-Amz-Target"), "TrentService.")
	switch {
	case c.r.Method != http.MethodPost || (target != "DescribeKey" && target != "GetKeyPolicy" && target != "ListGrants"):
		c.kmsFail(http.StatusBadRequest, "UnsupportedOperationException", "only DescribeKey, GetKeyPolicy and ListGrants are served")
		return
	case c.r.Header.Get("Authorization") == "":
		c.kmsFail(http.StatusBadRequest, "MissingAuthenticationTokenException", "Missing Authentication Token")
		return
	}
	if c.injected(kmsPrefix+target, faultReplies{
		throttling: func() { c.kmsFail(http.StatusBadRequest, "ThrottlingException", "Rate exceeded") },
		serviceFailure: func() {
			c.kmsFail(http.StatusInternalServerError, "KMSInternalException", "An internal error occurred.")
		},
		accessDenied: func() {
			c.kmsFail(http.StatusBadRequest, "AccessDeniedException", "User is not authorized to perform: kms:"+target)
		},
		malformed: func() {
			c.w.Header().Set("Content-Type", "application/x-amz-json-1.1")
			io.WriteString(c.w, `{"KeyMetadata": {"Arn": "trunc`)
		},
	}) {
		return
	}
	var in struct{ KeyId string }
	if err := json.NewDecoder(io.LimitReader(c.r.Body, 1<<16)).Decode(&in); err != nil || in.KeyId == "" {
		c.kmsFail(http.StatusBadRequest, "ValidationException", "the request body must be a JSON object with a KeyId")
		return
	}
	if c.snap == nil {
		c.kmsFail(http.StatusInternalServerError, "KMSInternalException", "The local endpoint has no snapshot loaded.")
		return
	}
	key, err := c.snap.Key(c.r.Context(), in.KeyId)
	var nf *authz.NotFoundError
	switch {
	case errors.As(err, &nf):
		c.kmsFail(http.StatusBadRequest, "NotFoundException", "Key '"+in.KeyId+"' does not exist")
		return
	case err != nil:
		c.kmsFail(http.StatusBadRequest, "AccessDeniedException", err.Error())
		return
	}
	var out any
	switch target {
	case "DescribeKey":
		m := map[string]any{"KeyId": key.ARN[strings.LastIndex(key.ARN, "/")+1:], "Arn": key.ARN, "AWSAccountId": key.Account,
			"KeyState": key.State, "Enabled": key.State == authz.KMSKeyEnabled, "KeyManager": "CUSTOMER"}
		if key.DeletionDate != nil {
			m["DeletionDate"] = float64(key.DeletionDate.Unix())
		}
		out = map[string]any{"KeyMetadata": m}
	case "GetKeyPolicy":
		if key.Policy == nil {
			c.kmsFail(http.StatusBadRequest, "AccessDeniedException", "User is not authorized to perform: kms:GetKeyPolicy")
			return
		}
		out = map[string]any{"Policy": key.Policy.Document(), "PolicyName": "default"}
	case "ListGrants":
		grants := []map[string]any{}
		for _, g := range key.Grants {
			grants = append(grants, map[string]any{"GrantId": g.ID, "GranteePrincipal": g.Grantee, "Operations": g.Operations, "KeyId": key.ARN})
		}
		out = map[string]any{"Grants": grants, "Truncated": false}
	}
	body, _ := json.Marshal(out)
	c.w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	c.w.Header().Set("x-amzn-RequestId", c.requestID)
	c.w.WriteHeader(http.StatusOK)
	c.w.Write(body)
}

func (c *call) kmsFail(status int, code, message string) {
	body, _ := json.Marshal(map[string]string{"__type": code, "message": message})
	c.w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	c.w.Header().Set("x-amzn-RequestId", c.requestID)
	c.w.WriteHeader(status)
	c.w.Write(body)
}
