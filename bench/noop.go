package bench

import (
	"context"

	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/nodeclass-guard/nodeclass-guard/rules"
)

// NoopValidator is controller-runtime's typed validator doing nothing: the
// floor of any validating webhook built as nodeclass-guard is (the same
// decoding of the AdmissionReview and of the typed object, the same
// response), with no rule at all. serve's CPU per admission over this
// one's is what the rules and their IAM cache cost.
type NoopValidator struct{}

var _ admission.Validator[*rules.EC2NodeClass] = NoopValidator{}

// ValidateCreate implements admission.Validator.
func (NoopValidator) ValidateCreate(context.Context, *rules.EC2NodeClass) (admission.Warnings, error) {
	return nil, nil
}

// ValidateUpdate implements admission.Validator.
func (NoopValidator) ValidateUpdate(context.Context, *rules.EC2NodeClass, *rules.EC2NodeClass) (admission.Warnings, error) {
	return nil, nil
}

// ValidateDelete implements admission.Validator.
func (NoopValidator) ValidateDelete(context.Context, *rules.EC2NodeClass) (admission.Warnings, error) {
	return nil, nil
}

// NoopHandler is NoopValidator behind controller-runtime's admission
// webhook, with nodeclass-guard's scheme.
func NoopHandler() *admission.Webhook {
	return admission.WithValidator[*rules.EC2NodeClass](rules.AdmissionScheme(), NoopValidator{})
}

// RunNoop serves NoopHandler as RunTrivial serves TrivialHandler.
func RunNoop(ctx context.Context, o TrivialOptions) error {
	return serveTLS(ctx, "no-op validator", o, NoopHandler())
}
