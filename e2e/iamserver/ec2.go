package iamserver

import (
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
)

// The server also speaks EC2's Query API (form-encoded, Version
// 2016-11-15, XML answers; Filter.N.Name / Filter.N.Value.M, Owner.N,
// CapacityReservationId.N) for DescribeSubnets, DescribeSecurityGroups,
// DescribeImages and DescribeCapacityReservations, and SSM's JSON API
// (X-Amz-Target AmazonSSM.GetParameter), answered from the snapshot's EC2
// and SSM sections by its own filter matching. Their calls are counted
// under "ec2:" and "ssm:" names; their latency is SetEC2Latency's and
// SetSSMLatency's (or WithActionLatency of the name); faults are injected
// with a Failure whose Action names them or is "ec2:*" / "ssm:*". Point the
// SDK's EC2 and SSM clients at the same URL as IAM's.

const (
	ec2Prefix  = "ec2:"
	ssmPrefix  = "ssm:"
	ec2Version = "2016-11-15"
	ec2xmlns   = "http://ec2.amazonaws.com/doc/2016-11-15/"
)

// EC2 and SSM action names, for Calls, WithActionLatency and
// Failure.Action.
const (
	EC2DescribeSubnets              = ec2Prefix + "DescribeSubnets"
	EC2DescribeSecurityGroups       = ec2Prefix + "DescribeSecurityGroups"
	EC2DescribeImages               = ec2Prefix + "DescribeImages"
	EC2DescribeCapacityReservations = ec2Prefix + "DescribeCapacityReservations"
	EC2All                          = ec2Prefix + "*"
	SSMGetParameter                 = ssmPrefix + "GetParameter"
	SSMAll                          = ssmPrefix + "*"
)

// WithEC2Latency delays every EC2 answer by d.
func WithEC2Latency(d time.Duration) Option { return func(s *Server) { s.ec2Latency = d } }

// SetEC2Latency sets the delay of every EC2 answer.
func (s *Server) SetEC2Latency(d time.Duration) {
	s.mu.Lock()
	s.ec2Latency = d
	s.mu.Unlock()
}

// SetSSMLatency sets the delay of every SSM answer.
func (s *Server) SetSSMLatency(d time.Duration) {
	s.mu.Lock()
	s.ssmLatency = d
	s.mu.Unlock()
}

// ec2Query reads the form of an EC2 Describe call into an authz.EC2Query.
func ec2Query(resource authz.EC2Resource, form map[string][]string) (authz.EC2Query, error) {
	q := authz.EC2Query{Resource: resource}
	filters := map[int]*authz.Filter{}
	owners := map[int]string{}
	ids := map[int]string{}
	for k, vs := range form {
		if len(vs) == 0 {
			continue
		}
		parts := strings.Split(k, ".")
		switch {
		case parts[0] == "Filter" && len(parts) >= 3:
			n, err := strconv.Atoi(parts[1])
			if err != nil {
				return q, fmt.Errorf("parameter %s: bad index", k)
			}
			f := filters[n]
			if f == nil {
				f = &authz.Filter{}
				filters[n] = f
			}
			switch {
			case parts[2] == "Name" && len(parts) == 3:
				f.Name = vs[0]
			case parts[2] == "Value" && len(parts) == 4:
				f.Values = append(f.Values, vs[0])
			default:
				return q, fmt.Errorf("unknown parameter %s", k)
			}
		case parts[0] == "Owner" && len(parts) == 2:
			n, _ := strconv.Atoi(parts[1])
			owners[n] = vs[0]
		case parts[0] == "CapacityReservationId" && len(parts) == 2:
			n, _ := strconv.Atoi(parts[1])
			ids[n] = vs[0]
		}
	}
	for _, n := range sortedInts(filters) {
		f := filters[n]
		if f.Name == "" {
			return q, fmt.Errorf("Filter.%d has values but no Name", n)
		}
		sort.Strings(f.Values)
		q.Filters = append(q.Filters, *f)
	}
	for _, n := range sortedInts(owners) {
		q.Owners = append(q.Owners, owners[n])
	}
	for _, n := range sortedInts(ids) {
		q.IDs = append(q.IDs, ids[n])
	}
	return q, nil
}

func sortedInts[V any](m map[int]V) []int {
	out := make([]int, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Ints(out)
	return out
}

// serveEC2 answers one EC2 Query API request (the form is parsed).
func (c *call) serveEC2(action string) {
	var resource authz.EC2Resource
	switch authz.EC2Resource(action) {
	case authz.EC2Subnets, authz.EC2SecurityGroups, authz.EC2Images, authz.EC2CapacityReservations:
		resource = authz.EC2Resource(action)
	default:
		c.ec2Fail(http.StatusBadRequest, "InvalidAction", fmt.Sprintf("The action %s is not valid for this web service.", action))
		return
	}
	if c.injected(ec2Prefix+action, faultReplies{
		throttling:     func() { c.ec2Fail(http.StatusServiceUnavailable, "RequestLimitExceeded", "Request limit exceeded.") },
		serviceFailure: func() { c.ec2Fail(http.StatusInternalServerError, "InternalError", "An internal error has occurred") },
		accessDenied: func() {
			c.ec2Fail(http.StatusForbidden, "UnauthorizedOperation", "You are not authorized to perform this operation.")
		},
		malformed: func() {
			c.w.Header().Set("Content-Type", "text/xml")
			fmt.Fprintf(c.w, `<%sResponse xmlns="%s"><subnetSet><item><subnetId>trunc`, action, ec2xmlns)
		},
	}) {
		return
	}
	if c.snap == nil {
		c.ec2Fail(http.StatusInternalServerError, "InternalError", "The local endpoint has no snapshot loaded.")
		return
	}
	q, err := ec2Query(resource, c.r.Form)
	if err != nil {
		c.ec2Fail(http.StatusBadRequest, "InvalidParameterValue", err.Error())
		return
	}
	res, err := c.snap.Describe(c.r.Context(), q)
	if err != nil {
		// A snapshot without the section: this endpoint cannot answer.
		c.ec2Fail(http.StatusForbidden, "UnauthorizedOperation", err.Error())
		return
	}
	if resource == authz.EC2CapacityReservations && len(q.IDs) > 0 && len(res.CapacityReservations) < len(q.IDs) {
		c.ec2Fail(http.StatusBadRequest, "InvalidCapacityReservationId.NotFound", fmt.Sprintf("The capacity reservation ID '%s' does not exist", strings.Join(q.IDs, ",")))
		return
	}
	c.ec2Reply(action, resource, res)
}

type ec2Tag struct {
	Key   string `xml:"key"`
	Value string `xml:"value"`
}

func ec2Tags(m map[string]string) []ec2Tag {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]ec2Tag, len(keys))
	for i, k := range keys {
		out[i] = ec2Tag{Key: k, Value: m[k]}
	}
	return out
}

type (
	ec2Subnet struct {
		ID        string   `xml:"subnetId"`
		VPC       string   `xml:"vpcId"`
		AZ        string   `xml:"availabilityZone"`
		AZID      string   `xml:"availabilityZoneId"`
		Owner     string   `xml:"ownerId"`
		State     string   `xml:"state"`
		Tags      []ec2Tag `xml:"tagSet>item"`
		AvailIPs  int      `xml:"availableIpAddressCount"`
		SubnetARN string   `xml:"subnetArn"`
	}
	ec2Group struct {
		ID    string   `xml:"groupId"`
		Name  string   `xml:"groupName"`
		VPC   string   `xml:"vpcId"`
		Owner string   `xml:"ownerId"`
		Tags  []ec2Tag `xml:"tagSet>item"`
	}
	ec2Image struct {
		ID         string   `xml:"imageId"`
		Name       string   `xml:"name"`
		Owner      string   `xml:"imageOwnerId"`
		OwnerAlias string   `xml:"imageOwnerAlias,omitempty"`
		Arch       string   `xml:"architecture"`
		Platform   string   `xml:"platform,omitempty"`
		State      string   `xml:"imageState"`
		Public     bool     `xml:"isPublic"`
		RootType   string   `xml:"rootDeviceType,omitempty"`
		Tags       []ec2Tag `xml:"tagSet>item"`
	}
	ec2Reservation struct {
		ID       string   `xml:"capacityReservationId"`
		Owner    string   `xml:"ownerId"`
		Type     string   `xml:"instanceType"`
		AZ       string   `xml:"availabilityZone"`
		State    string   `xml:"state"`
		Criteria string   `xml:"instanceMatchCriteria"`
		EndDate  string   `xml:"endDate,omitempty"`
		Tags     []ec2Tag `xml:"tagSet>item"`
	}
)

func (c *call) ec2Reply(action string, resource authz.EC2Resource, res authz.EC2Resources) {
	type item = any
	var setName string
	var items []item
	switch resource {
	case authz.EC2Subnets:
		setName = "subnetSet"
		for _, x := range res.Subnets {
			items = append(items, ec2Subnet{ID: x.ID, VPC: x.VPCID, AZ: x.AvailabilityZone, AZID: x.AvailabilityZoneID, Owner: x.OwnerID, State: "available", Tags: ec2Tags(x.Tags), AvailIPs: 250})
		}
	case authz.EC2SecurityGroups:
		setName = "securityGroupInfo"
		for _, x := range res.SecurityGroups {
			items = append(items, ec2Group{ID: x.ID, Name: x.Name, VPC: x.VPCID, Owner: x.OwnerID, Tags: ec2Tags(x.Tags)})
		}
	case authz.EC2Images:
		setName = "imagesSet"
		for _, x := range res.Images {
			items = append(items, ec2Image{ID: x.ID, Name: x.Name, Owner: x.OwnerID, OwnerAlias: x.OwnerAlias, Arch: x.Architecture, Platform: x.Platform, State: x.State, Public: x.Public, RootType: x.RootDeviceType, Tags: ec2Tags(x.Tags)})
		}
	case authz.EC2CapacityReservations:
		setName = "capacityReservationSet"
		for _, x := range res.CapacityReservations {
			r := ec2Reservation{ID: x.ID, Owner: x.OwnerID, Type: x.InstanceType, AZ: x.AvailabilityZone, State: x.State, Criteria: x.InstanceMatchCriteria, Tags: ec2Tags(x.Tags)}
			if !x.EndDate.IsZero() {
				r.EndDate = x.EndDate.UTC().Format(time.RFC3339)
			}
			items = append(items, r)
		}
	}
	var b strings.Builder
	b.WriteString(xml.Header)
	fmt.Fprintf(&b, `<%sResponse xmlns="%s"><requestId>%s</requestId><%s>`, action, ec2xmlns, c.requestID, setName)
	for _, it := range items {
		body, err := xml.Marshal(it)
		if err != nil {
			c.ec2Fail(http.StatusInternalServerError, "InternalError", err.Error())
			return
		}
		// Each item is marshalled under its Go type's name; EC2 calls it item.
		s := string(body)
		s = s[strings.IndexByte(s, '>')+1 : strings.LastIndexByte(s, '<')]
		b.WriteString("<item>" + s + "</item>")
	}
	fmt.Fprintf(&b, `</%s></%sResponse>`, setName, action)
	c.w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	c.w.Header().Set("x-amzn-RequestId", c.requestID)
	c.w.WriteHeader(http.StatusOK)
	io.WriteString(c.w, b.String())
}

// ec2Fail writes an error in EC2's Response/Errors shape.
func (c *call) ec2Fail(status int, code, message string) {
	var b strings.Builder
	b.WriteString(xml.Header)
	b.WriteString("<Response><Errors><Error><Code>")
	xml.EscapeText(&b, []byte(code))
	b.WriteString("</Code><Message>")
	xml.EscapeText(&b, []byte(message))
	b.WriteString("</Message></Error></Errors><RequestID>" + c.requestID + "</RequestID></Response>")
	c.w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	c.w.WriteHeader(status)
	io.WriteString(c.w, b.String())
}

// serveSSM answers one SSM JSON API request.
func (c *call) serveSSM() {
	target := strings.TrimPrefix(c.r.Header.Get("X-Amz-Target"), "AmazonSSM.")
	if c.r.Method != http.MethodPost || target != "GetParameter" {
		c.ssmFail(http.StatusBadRequest, "UnknownOperationException", "only GetParameter is served")
		return
	}
	if c.r.Header.Get("Authorization") == "" {
		c.ssmFail(http.StatusBadRequest, "MissingAuthenticationTokenException", "Missing Authentication Token")
		return
	}
	if c.injected(SSMGetParameter, faultReplies{
		throttling: func() { c.ssmFail(http.StatusBadRequest, "ThrottlingException", "Rate exceeded") },
		serviceFailure: func() {
			c.ssmFail(http.StatusInternalServerError, "InternalServerError", "An internal error occurred.")
		},
		accessDenied: func() {
			c.ssmFail(http.StatusBadRequest, "AccessDeniedException", "User is not authorized to perform: ssm:GetParameter")
		},
		malformed: func() {
			c.w.Header().Set("Content-Type", "application/x-amz-json-1.1")
			io.WriteString(c.w, `{"Parameter": {"Name": "trunc`)
		},
	}) {
		return
	}
	var in struct{ Name string }
	if err := json.NewDecoder(io.LimitReader(c.r.Body, 1<<16)).Decode(&in); err != nil || in.Name == "" {
		c.ssmFail(http.StatusBadRequest, "ValidationException", "the request body must be a JSON object with a Name")
		return
	}
	if c.snap == nil {
		c.ssmFail(http.StatusInternalServerError, "InternalServerError", "The local endpoint has no snapshot loaded.")
		return
	}
	p, err := c.snap.Parameter(c.r.Context(), in.Name)
	var nf *authz.NotFoundError
	switch {
	case errors.As(err, &nf):
		c.ssmFail(http.StatusBadRequest, "ParameterNotFound", "Parameter "+in.Name+" not found.")
		return
	case err != nil:
		c.ssmFail(http.StatusBadRequest, "AccessDeniedException", err.Error())
		return
	}
	body, _ := json.Marshal(map[string]any{"Parameter": map[string]any{"Name": p.Name, "Type": "String", "Value": p.Value, "Version": 1, "DataType": "text"}})
	c.w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	c.w.Header().Set("x-amzn-RequestId", c.requestID)
	c.w.WriteHeader(http.StatusOK)
	c.w.Write(body)
}

func (c *call) ssmFail(status int, code, message string) {
	body, _ := json.Marshal(map[string]string{"__type": code, "message": message})
	c.w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	c.w.Header().Set("x-amzn-RequestId", c.requestID)
	c.w.WriteHeader(status)
	c.w.Write(body)
}
