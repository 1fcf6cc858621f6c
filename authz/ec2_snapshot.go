package authz

import (
	"context"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
	"time"
)

// The snapshot's optional EC2 and SSM sections, for the selector checks
// offline, each the JSON the AWS CLI prints (merged with `jq -s add`):
//
//   - "Subnets": `aws ec2 describe-subnets`
//   - "SecurityGroups": `aws ec2 describe-security-groups`
//   - "Images": `aws ec2 describe-images --owners self amazon` (and the
//     images of any other owner the classes name)
//   - "CapacityReservations": `aws ec2 describe-capacity-reservations`
//   - "Parameters": `aws ssm get-parameters --names ...` (the alias
//     parameters; a name in its "InvalidParameters" is known missing)
//
// A snapshot without a section stays valid: the questions it would answer
// are unavailable, and the rules report those checks as skipped. With the
// section, the snapshot answers each Describe call as EC2 would, by
// matching the call's filters (EC2's wildcards * and ?) against the
// section's resources.
type (
	ec2Sections struct {
		Subnets              *[]subnetDoc              `json:"Subnets"`
		SecurityGroups       *[]securityGroupDoc       `json:"SecurityGroups"`
		Images               *[]imageDoc               `json:"Images"`
		CapacityReservations *[]capacityReservationDoc `json:"CapacityReservations"`
		Parameters           *[]parameterDoc           `json:"Parameters"`
		InvalidParameters    []string                  `json:"InvalidParameters"`
	}
	tagDoc struct {
		Key, Value string
	}
	subnetDoc struct {
		SubnetId, VpcId, AvailabilityZone, AvailabilityZoneId, OwnerId string
		Tags                                                           []tagDoc
	}
	securityGroupDoc struct {
		GroupId, GroupName, VpcId, OwnerId string
		Tags                               []tagDoc
	}
	imageDoc struct {
		ImageId, Name, OwnerId, ImageOwnerAlias, Architecture, Platform, State string
		Public                                                                 bool   `json:",omitempty"`
		RootDeviceType                                                         string `json:",omitempty"`
		Tags                                                                   []tagDoc
	}
	capacityReservationDoc struct {
		CapacityReservationId, OwnerId, InstanceType, AvailabilityZone, State, InstanceMatchCriteria string
		EndDate                                                                                      *time.Time
		Tags                                                                                         []tagDoc
	}
	parameterDoc struct {
		Name, Value string
	}
)

func (e ec2Sections) any() bool {
	return e.Subnets != nil || e.SecurityGroups != nil || e.Images != nil || e.CapacityReservations != nil || e.Parameters != nil
}

func appendSection[T any](dst **[]T, src *[]T) {
	if src == nil {
		return
	}
	if *dst == nil {
		*dst = new([]T)
	}
	**dst = append(**dst, *src...)
}

// merge adds o's sections to e's.
func (e *ec2Sections) merge(o ec2Sections) {
	appendSection(&e.Subnets, o.Subnets)
	appendSection(&e.SecurityGroups, o.SecurityGroups)
	appendSection(&e.Images, o.Images)
	appendSection(&e.CapacityReservations, o.CapacityReservations)
	appendSection(&e.Parameters, o.Parameters)
	e.InvalidParameters = append(e.InvalidParameters, o.InvalidParameters...)
}

// ec2Snapshot is what a snapshot knows about EC2 and SSM; a nil slice is
// a section the snapshot lacks.
type ec2Snapshot struct {
	// account is the snapshot's account (of its roles), for the "self"
	// image owner.
	account       string
	subnets       []Subnet
	groups        []SecurityGroup
	images        []Image
	reservations  []CapacityReservation
	parameters    map[string]string
	hasSubnets    bool
	hasGroups     bool
	hasImages     bool
	hasReserved   bool
	hasParameters bool
}

func tagMap(ts []tagDoc) map[string]string {
	if len(ts) == 0 {
		return nil
	}
	m := make(map[string]string, len(ts))
	for _, t := range ts {
		m[t.Key] = t.Value
	}
	return m
}

func buildEC2(d ec2Sections, account string) (ec2Snapshot, error) {
	s := ec2Snapshot{account: account}
	if d.Subnets != nil {
		s.hasSubnets = true
		for i, x := range *d.Subnets {
			if x.SubnetId == "" || x.VpcId == "" {
				return s, fmt.Errorf(`Subnets[%d]: no SubnetId or VpcId; want the output of "aws ec2 describe-subnets"`, i)
			}
			s.subnets = append(s.subnets, Subnet{ID: x.SubnetId, VPCID: x.VpcId, AvailabilityZone: x.AvailabilityZone,
				AvailabilityZoneID: x.AvailabilityZoneId, OwnerID: x.OwnerId, Tags: tagMap(x.Tags)})
		}
	}
	if d.SecurityGroups != nil {
		s.hasGroups = true
		for i, x := range *d.SecurityGroups {
			if x.GroupId == "" {
				return s, fmt.Errorf(`SecurityGroups[%d]: no GroupId; want the output of "aws ec2 describe-security-groups"`, i)
			}
			s.groups = append(s.groups, SecurityGroup{ID: x.GroupId, Name: x.GroupName, VPCID: x.VpcId, OwnerID: x.OwnerId, Tags: tagMap(x.Tags)})
		}
	}
	if d.Images != nil {
		s.hasImages = true
		for i, x := range *d.Images {
			if x.ImageId == "" || x.Architecture == "" {
				return s, fmt.Errorf(`Images[%d]: no ImageId or Architecture; want the output of "aws ec2 describe-images"`, i)
			}
			state := x.State
			if state == "" {
				state = "available"
			}
			s.images = append(s.images, Image{ID: x.ImageId, Name: x.Name, OwnerID: x.OwnerId, OwnerAlias: x.ImageOwnerAlias,
				Architecture: x.Architecture, Platform: strings.ToLower(x.Platform), State: state, Public: x.Public, RootDeviceType: x.RootDeviceType, Tags: tagMap(x.Tags)})
		}
	}
	if d.CapacityReservations != nil {
		s.hasReserved = true
		for i, x := range *d.CapacityReservations {
			if x.CapacityReservationId == "" {
				return s, fmt.Errorf(`CapacityReservations[%d]: no CapacityReservationId; want the output of "aws ec2 describe-capacity-reservations"`, i)
			}
			r := CapacityReservation{ID: x.CapacityReservationId, OwnerID: x.OwnerId, InstanceType: x.InstanceType,
				AvailabilityZone: x.AvailabilityZone, State: x.State, InstanceMatchCriteria: x.InstanceMatchCriteria, Tags: tagMap(x.Tags)}
			if x.EndDate != nil {
				r.EndDate = *x.EndDate
			}
			s.reservations = append(s.reservations, r)
		}
	}
	if d.Parameters != nil || len(d.InvalidParameters) > 0 {
		s.hasParameters = true
		s.parameters = map[string]string{}
		for i, p := range derefParams(d.Parameters) {
			if p.Name == "" {
				return s, fmt.Errorf(`Parameters[%d]: no Name; want the output of "aws ssm get-parameters"`, i)
			}
			s.parameters[p.Name] = p.Value
		}
	}
	return s, nil
}

func derefParams(p *[]parameterDoc) []parameterDoc {
	if p == nil {
		return nil
	}
	return *p
}

// account returns the account of the snapshot's roles, "" when it has none.
func (s *Snapshot) account() string {
	for _, sr := range s.roles {
		if a, err := ParseARN(sr.role.ARN); err == nil && a.Account != "" {
			return a.Account
		}
	}
	return ""
}

var _ EC2View = (*Snapshot)(nil)

// HasEC2 reports whether the snapshot has any EC2 or SSM section.
func (s *Snapshot) HasEC2() bool {
	e := s.ec2
	return e.hasSubnets || e.hasGroups || e.hasImages || e.hasReserved || e.hasParameters
}

// KubernetesVersion is the cluster section's version, "" when unknown.
func (s *Snapshot) KubernetesVersion() string {
	if s.eks.cluster == nil {
		return ""
	}
	return s.eks.cluster.Version
}

func missingSection(op, section, command string) error {
	svc := "EC2"
	if op == "GetParameter" {
		svc = "SSM"
	}
	return &UnavailableError{Service: svc, Op: op, Err: fmt.Errorf("the snapshot has no %q section (%s)", section, command)}
}

// Describe implements EC2View from the snapshot's sections.
func (s *Snapshot) Describe(_ context.Context, q EC2Query) (EC2Resources, error) {
	var out EC2Resources
	e := &s.ec2
	switch q.Resource {
	case EC2Subnets:
		if !e.hasSubnets {
			return out, missingSection(string(q.Resource), "Subnets", "aws ec2 describe-subnets")
		}
		for _, x := range e.subnets {
			if matchFilters(q.Filters, x.Tags, func(name string) []string {
				switch name {
				case "subnet-id":
					return []string{x.ID}
				case "vpc-id":
					return []string{x.VPCID}
				case "availability-zone":
					return []string{x.AvailabilityZone}
				case "owner-id":
					return []string{x.OwnerID}
				}
				return nil
			}) {
				out.Subnets = append(out.Subnets, x)
			}
		}
	case EC2SecurityGroups:
		if !e.hasGroups {
			return out, missingSection(string(q.Resource), "SecurityGroups", "aws ec2 describe-security-groups")
		}
		for _, x := range e.groups {
			if matchFilters(q.Filters, x.Tags, func(name string) []string {
				switch name {
				case "group-id":
					return []string{x.ID}
				case "group-name":
					return []string{x.Name}
				case "vpc-id":
					return []string{x.VPCID}
				case "owner-id":
					return []string{x.OwnerID}
				}
				return nil
			}) {
				out.SecurityGroups = append(out.SecurityGroups, x)
			}
		}
	case EC2Images:
		if !e.hasImages {
			return out, missingSection(string(q.Resource), "Images", "aws ec2 describe-images")
		}
		for _, x := range e.images {
			if !e.ownedBy(x, q.Owners) {
				continue
			}
			if matchFilters(q.Filters, x.Tags, func(name string) []string {
				switch name {
				case "image-id":
					return []string{x.ID}
				case "name":
					return []string{x.Name}
				case "state":
					return []string{x.State}
				case "architecture":
					return []string{x.Architecture}
				case "owner-id":
					return []string{x.OwnerID}
				}
				return nil
			}) {
				out.Images = append(out.Images, x)
			}
		}
	case EC2CapacityReservations:
		if !e.hasReserved {
			return out, missingSection(string(q.Resource), "CapacityReservations", "aws ec2 describe-capacity-reservations")
		}
		for _, x := range e.reservations {
			if len(q.IDs) > 0 && !containsStr(q.IDs, x.ID) {
				continue
			}
			if matchFilters(q.Filters, x.Tags, func(name string) []string {
				switch name {
				case "capacity-reservation-id":
					return []string{x.ID}
				case "owner-id":
					return []string{x.OwnerID}
				case "state":
					return []string{x.State}
				case "instance-match-criteria":
					return []string{x.InstanceMatchCriteria}
				case "instance-type":
					return []string{x.InstanceType}
				case "availability-zone":
					return []string{x.AvailabilityZone}
				}
				return nil
			}) {
				out.CapacityReservations = append(out.CapacityReservations, x)
			}
		}
	default:
		return out, &UnavailableError{Service: "EC2", Op: string(q.Resource), Err: errors.New("not an EC2 API the snapshot answers")}
	}
	return out, nil
}

// ownedBy applies DescribeImages' Owners: an account ID, "self" (the
// snapshot's account) or an owner alias ("amazon").
func (e *ec2Snapshot) ownedBy(im Image, owners []string) bool {
	if len(owners) == 0 {
		return true
	}
	for _, o := range owners {
		switch {
		case o == "self":
			if e.account != "" && im.OwnerID == e.account {
				return true
			}
		case o == im.OwnerID, im.OwnerAlias != "" && o == im.OwnerAlias:
			return true
		}
	}
	return false
}

// Parameter implements EC2View from the snapshot's Parameters section.
func (s *Snapshot) Parameter(_ context.Context, name string) (Parameter, error) {
	if !s.ec2.hasParameters {
		return Parameter{}, missingSection("GetParameter", "Parameters", "aws ssm get-parameters")
	}
	v, ok := s.ec2.parameters[name]
	if !ok {
		return Parameter{}, &NotFoundError{Kind: "SSM parameter", Name: name}
	}
	return Parameter{Name: name, Value: v}, nil
}

// matchFilters applies EC2's filter rules: every filter must match, a
// filter matches when any of its values matches any of the resource's
// values for that name (EC2's wildcards * and ?). "tag:K" reads tag K,
// "tag-key" the tag keys; attr gives the other names' values. A filter
// name the snapshot does not know matches nothing, so that a rule never
// believes a resource matched when it cannot tell.
func matchFilters(fs []Filter, tags map[string]string, attr func(string) []string) bool {
	for _, f := range fs {
		var have []string
		switch {
		case strings.HasPrefix(f.Name, "tag:"):
			v, ok := tags[strings.TrimPrefix(f.Name, "tag:")]
			if !ok {
				return false
			}
			have = []string{v}
		case f.Name == "tag-key":
			for k := range tags {
				have = append(have, k)
			}
			sort.Strings(have)
		default:
			have = attr(f.Name)
		}
		if !anyWildcard(f.Values, have) {
			return false
		}
	}
	return true
}

func anyWildcard(patterns, values []string) bool {
	for _, p := range patterns {
		for _, v := range values {
			if wildcardMatch(p, v) {
				return true
			}
		}
	}
	return false
}

// wildcardMatch matches EC2's filter wildcards: * any run, ? one
// character; other characters literally.
func wildcardMatch(pattern, value string) bool {
	if !strings.ContainsAny(pattern, "*?") {
		return pattern == value
	}
	// path.Match treats [ and \ specially; escape them, and / is no
	// separator for EC2 values, so match on a /-free rendering.
	var b strings.Builder
	for _, r := range pattern {
		switch r {
		case '[', ']', '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case '/':
			b.WriteRune('\x00')
		default:
			b.WriteRune(r)
		}
	}
	ok, err := path.Match(b.String(), strings.ReplaceAll(value, "/", "\x00"))
	return err == nil && ok
}

func containsStr(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
