package authz

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// The snapshot's optional KMS sections, for the encrypted-volume checks
// offline:
//
//   - "KMSKeys": an array, one element per key, each the outputs of
//     `aws kms describe-key --key-id K` ({"KeyMetadata": ...}),
//     `aws kms get-key-policy --key-id K --policy-name default`
//     ({"Policy": "..."}) and `aws kms list-grants --key-id K`
//     ({"Grants": [...]}) merged with `jq -s add`;
//   - "Aliases": `aws kms list-aliases` as printed, so that a class naming
//     alias/NAME finds its key.
//
// A snapshot without them stays valid: the questions they would answer are
// unavailable, and the rule reports the KMS checks as skipped.
type (
	kmsKeyDoc struct {
		KeyMetadata *struct {
			KeyId        string
			Arn          string
			AWSAccountId string
			KeyState     string
			DeletionDate *time.Time
		}
		Policy *string
		Grants []struct {
			GrantId          string
			GranteePrincipal string
			Operations       []string
		}
	}
	kmsAliasDoc struct {
		AliasName   string
		AliasArn    string
		TargetKeyId string
	}
)

// kmsSnapshot is what a snapshot knows about KMS; keys is nil when the
// snapshot has no KMSKeys section.
type kmsSnapshot struct {
	keys    map[string]*KMSKey // by ARN and by key ID
	aliases map[string]string  // alias name or ARN -> key ID
}

func buildKMS(keys *[]kmsKeyDoc, aliases *[]kmsAliasDoc) (kmsSnapshot, error) {
	var s kmsSnapshot
	if keys == nil {
		return s, nil
	}
	s.keys = map[string]*KMSKey{}
	for i, d := range *keys {
		m := d.KeyMetadata
		if m == nil || m.Arn == "" || m.KeyId == "" {
			return s, fmt.Errorf(`KMSKeys[%d]: no KeyMetadata.Arn and KeyId; want the output of "aws kms describe-key" (merged with get-key-policy and list-grants)`, i)
		}
		k := &KMSKey{ARN: m.Arn, Account: m.AWSAccountId, State: m.KeyState, DeletionDate: m.DeletionDate}
		k.Region, _, _ = KMSKeyARNParts(m.Arn)
		if k.Account == "" {
			_, k.Account, _ = KMSKeyARNParts(m.Arn)
		}
		if d.Policy == nil {
			k.PolicyUnknown = "the snapshot has no key policy for it (aws kms get-key-policy)"
		} else {
			p, err := ParsePolicy([]byte(*d.Policy))
			if err != nil {
				return s, fmt.Errorf("KMSKeys[%d] (%s): Policy: %w", i, m.KeyId, err)
			}
			k.Policy = p
		}
		for _, g := range d.Grants {
			k.Grants = append(k.Grants, KMSGrant{ID: g.GrantId, Grantee: g.GranteePrincipal, Operations: g.Operations})
		}
		s.keys[m.Arn] = k
		s.keys[m.KeyId] = k
	}
	if aliases != nil {
		s.aliases = map[string]string{}
		for _, a := range *aliases {
			if a.TargetKeyId == "" {
				continue
			}
			s.aliases[a.AliasName] = a.TargetKeyId
			if a.AliasArn != "" {
				s.aliases[a.AliasArn] = a.TargetKeyId
			}
		}
	}
	return s, nil
}

var _ KMSView = (*Snapshot)(nil)

// HasKMS reports whether the snapshot has a KMSKeys section.
func (s *Snapshot) HasKMS() bool { return s.kms.keys != nil }

// Key implements KMSView from the snapshot's KMSKeys and Aliases
// sections. A key in another account than the snapshot's is not one it
// can know: that is "could not check", not "not found".
func (s *Snapshot) Key(_ context.Context, id string) (KMSKey, error) {
	if s.kms.keys == nil {
		return KMSKey{}, &UnavailableError{Service: "KMS", Op: "DescribeKey",
			Err: errors.New(`the snapshot has no "KMSKeys" section (aws kms describe-key)`)}
	}
	if _, account, ok := KMSKeyARNParts(id); ok && s.account() != "" && account != s.account() {
		return KMSKey{}, &UnavailableError{Service: "KMS", Op: "DescribeKey",
			Err: fmt.Errorf("the snapshot knows account %s's keys, not account %s's", s.account(), account)}
	}
	look := id
	if strings.HasPrefix(id, "alias/") || strings.Contains(id, ":alias/") {
		target, ok := s.kms.aliases[id]
		if !ok {
			return KMSKey{}, &NotFoundError{Kind: "KMS alias", Name: id}
		}
		look = target
	}
	k, ok := s.kms.keys[look]
	if !ok {
		return KMSKey{}, &NotFoundError{Kind: "KMS key", Name: id}
	}
	return *k, nil
}
