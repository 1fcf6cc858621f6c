package iamserver

import (
	"net/http"
	"time"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
)

// The SCP layer's fault knobs. They act only on the SimulatePrincipalPolicy
// calls whose answer an SCP decides: the account is in an organization
// and an SCP says more of one of the asked actions than allowing it
// everywhere (authz.Organization.Shapes). The organization probe
// (iam:GetRole under FullAWSAccess), the policy reads and every other
// call are answered as usual, so that a test can show that the SCPs'
// verdict being unavailable is "could not check", never a pass.

// WithSCPFailure injects a failure of the SCP layer from the start.
// f.Action, when set, limits it to calls asking that IAM action
// ("ec2:RunInstances"); f.Fault is any Fault.
func WithSCPFailure(f Failure) Option {
	return func(s *Server) { s.scpFailures = append(s.scpFailures, &f) }
}

// InjectSCPFailure is WithSCPFailure while serving.
func (s *Server) InjectSCPFailure(f Failure) {
	s.mu.Lock()
	s.scpFailures = append(s.scpFailures, &f)
	s.mu.Unlock()
}

// WithSCPLatency delays the SCP layer's answers by d, on top of the
// call's own latency.
func WithSCPLatency(d time.Duration) Option { return func(s *Server) { s.scpLatency = d } }

// SetSCPLatency is WithSCPLatency while serving.
func (s *Server) SetSCPLatency(d time.Duration) {
	s.mu.Lock()
	s.scpLatency = d
	s.mu.Unlock()
}

// ClearSCPFaults removes the SCP layer's failures and latency.
func (s *Server) ClearSCPFaults() {
	s.mu.Lock()
	s.scpFailures, s.scpLatency = nil, 0
	s.mu.Unlock()
}

// scpFault decides the SCP layer's fault and delay for a call asking
// actions in org ("" and 0 when the SCPs decide none of them).
func (s *Server) scpFault(org *authz.Organization, actions []string) (Fault, time.Duration) {
	if org == nil {
		return "", 0
	}
	var shaped []string
	for _, a := range actions {
		if org.Shapes(a) {
			shaped = append(shaped, a)
		}
	}
	if len(shaped) == 0 {
		return "", 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delay := s.scpLatency
	for i, f := range s.scpFailures {
		if f.Action != "" && !contains(shaped, f.Action) {
			continue
		}
		switch {
		case f.Always:
			return f.Fault, delay
		case f.Next > 0:
			f.Next--
			if f.Next == 0 {
				s.scpFailures = append(s.scpFailures[:i:i], s.scpFailures[i+1:]...)
			}
			return f.Fault, delay
		case f.Fraction > 0 && s.rng.Float64() < f.Fraction:
			return f.Fault, delay
		}
	}
	return "", delay
}

// scpInjected applies the SCP layer's knobs to a SimulatePrincipalPolicy
// call asking actions; it reports whether it answered (a fault).
func (c *call) scpInjected(org *authz.Organization, actions []string) bool {
	fault, delay := c.s.scpFault(org, actions)
	if !c.wait(delay) {
		panic(http.ErrAbortHandler)
	}
	switch fault {
	case "":
		return false
	case Throttling:
		c.fail(http.StatusBadRequest, "Sender", "Throttling", "Rate exceeded")
	case ServiceFailure:
		c.fail(http.StatusInternalServerError, "Receiver", "ServiceFailure", "Request processing has failed because of an unknown error, exception or failure.")
	case AccessDenied:
		c.fail(http.StatusForbidden, "Sender", "AccessDenied", "User is not authorized to perform: iam:SimulatePrincipalPolicy")
	case MalformedXML:
		c.w.Header().Set("Content-Type", "text/xml")
		c.w.Write([]byte(`<SimulatePrincipalPolicyResponse xmlns="` + xmlns + `"><SimulatePrincipalPolicyResult><EvaluationResults><member><EvalActionName>trunc`))
	case Hang:
		select {
		case <-c.r.Context().Done():
		case <-c.stopping:
		}
		panic(http.ErrAbortHandler)
	}
	return true
}
