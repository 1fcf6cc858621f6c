package iamserver

import (
	"path/filepath"
	"testing"
)

// Dummy credentials the tests give the SDK; the endpoint never checks them.
const (
	TestAccessKeyID     = "AKIAIOSFODNN7EXAMPLE"
	TestSecretAccessKey = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
)

// IsolateAWSEnv makes the SDK's default credential chain find the given
// credentials and nothing of the machine's (no profile, shared files,
// region, endpoint override or instance metadata), for the rest of the test.
func IsolateAWSEnv(t testing.TB, accessKeyID, secretAccessKey string) {
	t.Helper()
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID":           accessKeyID,
		"AWS_SECRET_ACCESS_KEY":       secretAccessKey,
		"AWS_SESSION_TOKEN":           "",
		"AWS_REGION":                  "",
		"AWS_DEFAULT_REGION":          "",
		"AWS_PROFILE":                 "",
		"AWS_CONFIG_FILE":             filepath.Join(dir, "config"),
		"AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "credentials"),
		"AWS_EC2_METADATA_DISABLED":   "true",
		"AWS_ENDPOINT_URL":            "",
		"AWS_ENDPOINT_URL_IAM":        "",
	} {
		t.Setenv(k, v)
	}
}
