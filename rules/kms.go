package rules

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
)

// The encrypted-volume codes (extensions of the contract): the KMS key of
// each spec.blockDeviceMappings[].ebs.kmsKeyID must exist, be enabled, be
// in the cluster's region, and be usable by the role that launches (the
// Karpenter controller's): otherwise every instance dies at launch with
// Client.InvalidKMSKey.InvalidState.
const (
	// KMSKeyNotFound: KMS has no such key (or alias).
	KMSKeyNotFound Code = "KMSKeyNotFound"
	// KMSKeyNotEnabled: the key is PendingDeletion, Disabled,
	// PendingImport or Unavailable.
	KMSKeyNotEnabled Code = "KMSKeyNotEnabled"
	// KMSKeyWrongRegion: the key is in another region than the cluster's.
	KMSKeyWrongRegion Code = "KMSKeyWrongRegion"
	// KMSKeyAccessDenied: the controller role may not use the key for EBS
	// (kms:CreateGrant, GenerateDataKeyWithoutPlaintext, Decrypt,
	// ReEncrypt*) through the key policy, IAM and grants.
	KMSKeyAccessDenied Code = "KMSKeyAccessDenied"
	// EBSDefaultKMSKey (warn): an encrypted volume without a key uses the
	// account's default EBS key, which is not checked.
	EBSDefaultKMSKey Code = "EBSDefaultKMSKey"
	// KMSChecksSkipped (warn): a KMS check could not run (no KMS source,
	// KMS unreachable or not permitted, the key policy unreadable).
	KMSChecksSkipped Code = "KMSChecksSkipped"
)

var blockDevicesPath = specPath.Child("blockDeviceMappings")

// kmsActions are what EC2 asks KMS, as the launching principal, to create
// and attach a volume encrypted with a customer managed key.
var kmsActions = []string{"kms:CreateGrant", "kms:GenerateDataKeyWithoutPlaintext", "kms:Decrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo"}

// kmsKeysOf are the distinct KMS keys of spec's volumes that KMS is asked
// about: named, and not in another region by their ARN.
func kmsKeysOf(spec EC2NodeClassSpec, region string) []kmsKey {
	var out []kmsKey
	for i, m := range spec.BlockDeviceMappings {
		if m.EBS == nil || m.EBS.KMSKeyID == nil {
			continue
		}
		id := strings.TrimSpace(*m.EBS.KMSKeyID)
		if id == "" {
			continue
		}
		if r, _, ok := authz.KMSKeyARNParts(id); ok && region != "" && r != region {
			continue
		}
		if !slices.ContainsFunc(out, func(k kmsKey) bool { return k.id == id }) {
			out = append(out, kmsKey{id: id, path: blockDevicesPath.Index(i).Child("ebs", "kmsKeyID")})
		}
	}
	return out
}

// MaxKMSKeysAsked is how many distinct KMS keys of one class are looked
// up (3 KMS calls a key, cached; KMS's request quota is the account's): a
// class names one or two; the keys past it are reported as not checked.
const MaxKMSKeysAsked = 8

// kmsKeysRule looks the volumes' KMS keys up, all at once (3 KMS calls a
// key: DescribeKey, GetKeyPolicy, ListGrants, cached), at most
// MaxKMSKeysAsked of them.
var kmsKeysRule = &Rule{
	Name:   "KMS keys",
	Fields: []string{"spec.blockDeviceMappings"},
	Gives:  []fact{factKMSKeys},
	Plan: func(c *Checker, o *subject, q *Questions) {
		if !o.node || o.ec2 == nil || c.cfg.IAM == nil {
			return
		}
		o.kms = kmsKeysOf(o.ec2.Spec, c.cfg.Region)
		if c.cfg.KMS == nil {
			return
		}
		for _, k := range o.kms[:min(len(o.kms), MaxKMSKeysAsked)] {
			q.query(k.id, Query{Kind: QueryKMSKey, Name: k.id})
		}
	},
	Judge: func(c *Checker, o *subject, a Answers, _ *Verdict) {
		for i := range o.kms {
			o.kms[i].ans, o.kms[i].asked = a.one(o.kms[i].id)
		}
	},
}

// kmsRule judges the class's encrypted volumes: the default key said so,
// a named key's region from its ARN (no AWS question), then, with an IAM
// source, each key as KMS described it and the controller role's
// permission for each action EBS asks of it (one IAM question an action,
// decided with the key policy and grants).
var kmsRule = &Rule{
	Name:   "KMS",
	Late:   true,
	Codes:  []Code{KMSKeyNotFound, KMSKeyNotEnabled, KMSKeyWrongRegion, KMSKeyAccessDenied, EBSDefaultKMSKey, KMSChecksSkipped},
	Fields: []string{"spec.blockDeviceMappings"},
	Needs:  []fact{factKMSKeys},
	Plan: func(c *Checker, o *subject, q *Questions) {
		for _, k := range o.kms {
			if key, ok := c.usableKey(k); ok {
				q.permissions(k.id, c.keyUseQuestions(key))
			}
		}
	},
	Judge: func(c *Checker, o *subject, a Answers, v *Verdict) {
		if o.node && o.ec2 != nil {
			c.judgeKMS(v, o, a)
		}
	},
}

// usableKey is the key k names when its use is to be asked: found,
// enabled, in the region, its policy read, the controller role known.
func (c *Checker) usableKey(k kmsKey) (authz.KMSKey, bool) {
	key := k.ans.Key
	ok := k.asked && k.ans.Err == nil && (c.cfg.Region == "" || key.Region == "" || key.Region == c.cfg.Region) &&
		key.State == authz.KMSKeyEnabled && c.controllerARN != "" && key.Policy != nil
	return key, ok
}

// judgeKMS judges the volumes' keys, in the order the volumes name them.
func (c *Checker) judgeKMS(v *Verdict, o *subject, a Answers) {
	spec := o.ec2.Spec
	named := false
	for i, m := range spec.BlockDeviceMappings {
		if m.EBS == nil {
			continue
		}
		p := blockDevicesPath.Index(i).Child("ebs")
		id := ""
		if m.EBS.KMSKeyID != nil {
			id = strings.TrimSpace(*m.EBS.KMSKeyID)
		}
		if id == "" {
			if m.EBS.Encrypted != nil && *m.EBS.Encrypted {
				v.add(warn(EBSDefaultKMSKey, p.Child("encrypted"),
					"the volume is encrypted with the account's default EBS key in %s (aws/ebs unless the account set another: aws ec2 get-ebs-default-kms-key-id); nodeclass-guard checks nothing more about it. Name a key in kmsKeyID to have it checked", c.regionOr()))
			}
			continue
		}
		p = p.Child("kmsKeyID")
		if region, _, ok := authz.KMSKeyARNParts(id); ok && c.cfg.Region != "" && region != c.cfg.Region {
			v.add(deny(KMSKeyWrongRegion, p,
				"KMS key %s is in %s, but the cluster's nodes launch in %s, and EBS uses keys of the volume's own region only: every launch would fail with Client.InvalidKMSKey.InvalidState. Use a key (or a multi-Region replica) in %s", id, region, c.cfg.Region, c.cfg.Region))
			continue
		}
		named = true
	}
	if !named || c.cfg.IAM == nil {
		return
	}
	var skipped []string
	defer func() {
		if len(skipped) > 0 {
			v.add(warn(KMSChecksSkipped, blockDevicesPath, "not checked whether the volumes' KMS keys can be used: %s", truncate(strings.Join(skipped, "; "), 170)))
		}
	}()
	if c.cfg.KMS == nil {
		skipped = append(skipped, "no KMS source: give --iam-snapshot the KMSKeys section, or run with KMS access")
		return
	}
	var n notes
	defer n.report(v, c.cfg.OnIAMError, &o.stale)
	if extra := len(o.kms) - MaxKMSKeysAsked; extra > 0 {
		skipped = append(skipped, fmt.Sprintf("%d more keys from %s on (at most %d distinct keys a class are asked of KMS)", extra, o.kms[MaxKMSKeysAsked].path, MaxKMSKeysAsked))
	}
	for _, k := range o.kms {
		if !k.asked {
			continue
		}
		key, err := k.ans.Key, k.ans.Err
		switch {
		case errors.Is(err, authz.ErrNotFound):
			v.add(deny(KMSKeyNotFound, k.path,
				"KMS has no key %s in %s (account %s): every launch would fail with Client.InvalidKMSKey.InvalidState. Name an existing key's ARN, ID or alias", k.id, c.regionOr(), c.accountOr("")))
			continue
		case err != nil:
			skipped = append(skipped, fmt.Sprintf("%s (%s)", k.id, errSummary(err)))
			continue
		}
		n.served(key.Served)
		if c.cfg.Region != "" && key.Region != "" && key.Region != c.cfg.Region {
			v.add(deny(KMSKeyWrongRegion, k.path,
				"%s is key %s in %s, but the cluster's nodes launch in %s: every launch would fail with Client.InvalidKMSKey.InvalidState. Use a key in %s", k.id, key.ARN, key.Region, c.cfg.Region, c.cfg.Region))
			continue
		}
		if key.State != authz.KMSKeyEnabled {
			fix := "Enable it: aws kms enable-key --key-id " + key.ARN
			if key.State == "PendingDeletion" {
				when := ""
				if key.DeletionDate != nil {
					when = " on " + key.DeletionDate.UTC().Format("2006-01-02")
				}
				fix = "It will be deleted" + when + "; cancel that (aws kms cancel-key-deletion --key-id " + key.ARN + ", then enable-key) or name another key"
			}
			v.add(deny(KMSKeyNotEnabled, k.path,
				"KMS key %s is %s, not Enabled: every launch would fail with Client.InvalidKMSKey.InvalidState. %s", key.ARN, key.State, fix))
			continue
		}
		if c.controllerARN == "" {
			continue // PermissionChecksSkipped says why
		}
		if key.Policy == nil {
			skipped = append(skipped, fmt.Sprintf("whether the controller may use %s (%s)", key.ARN, key.PolicyUnknown))
			continue
		}
		c.judgeKeyUse(v, &n, k.path, key, a.questions(k.id), a.all(k.id))
	}
}

// keyUseQuestions ask IAM the controller role's permission for each KMS
// action EBS asks of key.
func (c *Checker) keyUseQuestions(key authz.KMSKey) []authz.Question {
	region := key.Region
	qs := make([]authz.Question, len(kmsActions))
	for i, a := range kmsActions {
		ctxKeys := map[string][]string{
			"kms:ViaService":    {"ec2." + region + ".amazonaws.com"},
			"kms:CallerAccount": {c.cfg.Controller.Account},
		}
		if a == "kms:CreateGrant" {
			ctxKeys["kms:GrantIsForAWSResource"] = []string{"true"}
		}
		qs[i] = authz.Question{Principal: c.controllerARN, Action: a, Resource: key.ARN, Context: ctxKeys,
			Complete: []string{"kms:ViaService", "kms:CallerAccount", "kms:GrantIsForAWSResource", "kms:GrantOperations", "kms:GrantConstraintType"}}
	}
	return qs
}

// judgeKeyUse decides each KMS action of qs on key with IAM's answers as,
// the key policy and the grants.
func (c *Checker) judgeKeyUse(v *Verdict, n *notes, path *field.Path, key authz.KMSKey, qs []authz.Question, as []Answer) {
	region := key.Region
	var denied, why []string
	for i, a := range as {
		if !n.decision(path, a) {
			return
		}
		u := authz.DecideKeyUse(key, qs[i], a.Decision)
		for _, op := range u.Unsupported {
			if n.unsupported == nil {
				n.unsupported = map[string]bool{}
			}
			n.unsupported[op] = true
		}
		if !u.Allowed {
			denied = append(denied, qs[i].Action)
			if !containsString(why, u.Why) {
				why = append(why, u.Why)
			}
		}
	}
	if len(denied) == 0 {
		return
	}
	v.add(deny(KMSKeyAccessDenied, path,
		"role %s may not %s on KMS key %s: %s; EC2 launches with the controller's permissions, so every encrypted launch would fail with Client.InvalidKMSKey.InvalidState. Add to the key policy: %s",
		c.controllerARN, strings.Join(denied, ", "), key.ARN, strings.Join(why, "; "), keyPolicyStatement(c.controllerARN, region)))
}

// keyPolicyStatement is the key policy statement that lets role use a key
// for EBS volumes in region.
func keyPolicyStatement(role, region string) string {
	return fmt.Sprintf(`{"Sid": "AllowKarpenterEBS", "Effect": "Allow", "Principal": {"AWS": %q}, "Action": ["kms:CreateGrant", "kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKeyWithoutPlaintext", "kms:ReEncrypt*"], "Resource": "*", "Condition": {"StringEquals": {"kms:ViaService": "ec2.%s.amazonaws.com"}}}`, role, region)
}

// regionOr is the cluster's region for a message.
func (c *Checker) regionOr() string {
	if c.cfg.Region != "" {
		return c.cfg.Region
	}
	return "the cluster's region"
}
