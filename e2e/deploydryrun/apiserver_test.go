package deploydryrun

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/nodeclass-guard/nodeclass-guard/e2e/framework"
)

// certManagerModule is the Go module whose deploy/crds folder holds
// cert-manager's CRDs, at the version go.mod pins.
const certManagerModule = "github.com/cert-manager/cert-manager"

// serviceMonitorCRD is the test's own ServiceMonitor CRD (see the file).
const serviceMonitorCRD = "testdata/servicemonitors.monitoring.coreos.com.yaml"

// missingError says that something the tests need is not on this machine,
// and which command provides it. Tests skip on it unless NCG_REQUIRE_ENVTEST
// asks them to fail.
type missingError struct {
	what string // what is missing, with the path looked at
	fix  string // the command that provides it
}

func (e *missingError) Error() string {
	return fmt.Sprintf("%s: run `%s`", e.what, e.fix)
}

// apiServer is the package's control plane: kube-apiserver and etcd with
// the CRDs installed, and an admin client whose warnings are recorded.
type apiServer struct {
	env      *envtest.Environment
	client   client.Client
	warnings *framework.Warnings
	// crds lists the CRD files installed, for messages.
	crds []string
}

// shared is the one apiServer of the test binary, started by the first test
// that needs it and stopped by TestMain.
var shared struct {
	once sync.Once
	srv  *apiServer
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.srv != nil {
		if err := shared.srv.env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "deploydryrun: stopping envtest:", err)
			if code == 0 {
				code = 1
			}
		}
	}
	os.Exit(code)
}

// startAPIServer returns the shared apiServer, starting it on first use.
// Missing assets skip the test, or fail it when NCG_REQUIRE_ENVTEST=1 (as
// `make test` sets); any other start error fails it.
func startAPIServer(t *testing.T) *apiServer {
	t.Helper()
	shared.once.Do(func() {
		start := time.Now()
		shared.srv, shared.err = newAPIServer()
		if shared.err == nil {
			t.Logf("kube-apiserver started in %s with CRDs %s", time.Since(start).Round(time.Millisecond), strings.Join(shared.srv.crds, ", "))
		}
	})
	var missing *missingError
	switch {
	case errors.As(shared.err, &missing) && !framework.Required():
		t.Skipf("%v (NCG_REQUIRE_ENVTEST=1 turns this skip into a failure)", shared.err)
	case shared.err != nil:
		t.Fatal(shared.err)
	}
	return shared.srv
}

func newAPIServer() (_ *apiServer, err error) {
	root, err := framework.RepoRoot()
	if err != nil {
		return nil, err
	}
	assets, err := assetsDir(root)
	if err != nil {
		return nil, err
	}
	var crds []string
	for _, find := range []func(string) ([]string, error){certManagerCRDs, karpenterCRDs, testCRDs} {
		files, err := find(root)
		if err != nil {
			return nil, err
		}
		crds = append(crds, files...)
	}

	env := &envtest.Environment{
		BinaryAssetsDirectory:    assets,
		ControlPlaneStartTimeout: 2 * time.Minute,
		ControlPlaneStopTimeout:  time.Minute,
		CRDInstallOptions: envtest.CRDInstallOptions{
			Paths:              crds,
			ErrorIfPathMissing: true,
		},
	}
	cfg, err := env.Start()
	if err != nil {
		if stopErr := env.Stop(); stopErr != nil {
			err = errors.Join(err, fmt.Errorf("while cleaning up: %w", stopErr))
		}
		return nil, fmt.Errorf("starting envtest from %s: %w", assets, err)
	}
	defer func() {
		if err != nil {
			if stopErr := env.Stop(); stopErr != nil {
				err = errors.Join(err, fmt.Errorf("while cleaning up: %w", stopErr))
			}
		}
	}()

	warnings := &framework.Warnings{}
	cfg = rest.CopyConfig(cfg)
	cfg.WarningHandler = nil
	cfg.WarningHandlerWithContext = warnings
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		return nil, err
	}
	names := make([]string, len(crds))
	for i, f := range crds {
		names[i] = filepath.Base(f)
	}
	return &apiServer{env: env, client: c, warnings: warnings, crds: names}, nil
}

// assetsDir finds kube-apiserver and etcd: KUBEBUILDER_ASSETS, or
// bin/k8s/<KUBERNETES_VERSION> where `make envtest-assets` builds them.
func assetsDir(root string) (string, error) {
	dir := os.Getenv(framework.EnvAssets)
	if dir == "" {
		v, err := framework.Versions(root)
		if err != nil {
			return "", err
		}
		if v["KUBERNETES_VERSION"] == "" {
			return "", errors.New("hack/versions.env has no KUBERNETES_VERSION")
		}
		dir = filepath.Join(root, "bin", "k8s", v["KUBERNETES_VERSION"])
	}
	for _, bin := range []string{"kube-apiserver", "etcd"} {
		if st, err := os.Stat(filepath.Join(dir, bin)); err != nil || st.IsDir() {
			return "", &missingError{
				what: fmt.Sprintf("envtest: no %s in %s (%s)", bin, dir, framework.EnvAssets),
				fix:  "make envtest-assets",
			}
		}
	}
	return dir, nil
}

// karpenterCRDs lists Karpenter's current CRDs: NCG_CRD_DIR/v1, default
// bin/crds/v1 (`make crds`). The rendered objects do not need them; they
// are there so that the API server looks like a cluster running Karpenter.
func karpenterCRDs(root string) ([]string, error) {
	dir := os.Getenv(framework.EnvCRDDir)
	if dir == "" {
		dir = filepath.Join(root, "bin", "crds")
	}
	files := []string{
		filepath.Join(dir, string(framework.CRDsV1), "karpenter.k8s.aws_ec2nodeclasses.yaml"),
		filepath.Join(dir, string(framework.CRDsV1), "karpenter.sh_nodepools.yaml"),
	}
	for _, f := range files {
		if _, err := os.Stat(f); err != nil {
			return nil, &missingError{what: fmt.Sprintf("no Karpenter CRD %s (%s)", f, framework.EnvCRDDir), fix: "make crds"}
		}
	}
	return files, nil
}

// testCRDs lists the CRDs this package writes itself.
func testCRDs(string) ([]string, error) {
	path, err := filepath.Abs(serviceMonitorCRD)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("the test's ServiceMonitor CRD: %w", err)
	}
	return []string{path}, nil
}

// goModule is what `go list -m -json` and `go mod download -json` say of a
// module.
type goModule struct {
	Path, Version, Dir string
	Error              *struct{ Err string }
}

// certManagerModuleInfo locates the cert-manager module go.mod requires, in
// the module cache, downloading it through the module proxy when it is not
// there yet.
func certManagerModuleInfo(root string) (goModule, error) {
	m, err := goJSON(root, "list", "-m", "-json", certManagerModule)
	if err != nil {
		return m, err
	}
	if m.Version == "" {
		return m, fmt.Errorf("go.mod does not require %s", certManagerModule)
	}
	if m.Dir == "" {
		dl, err := goJSON(root, "mod", "download", "-json", certManagerModule+"@"+m.Version)
		if err != nil || dl.Dir == "" {
			return m, &missingError{
				what: fmt.Sprintf("%s@%s is not in the module cache and could not be downloaded (%v)", certManagerModule, m.Version, err),
				fix:  "go mod download " + certManagerModule,
			}
		}
		m.Dir = dl.Dir
	}
	return m, nil
}

// certManagerCRDs lists cert-manager's CRDs, deploy/crds/*.yaml of the
// cert-manager module: plain CRDs, as cert-manager's release manifest
// installs them.
func certManagerCRDs(root string) ([]string, error) {
	m, err := certManagerModuleInfo(root)
	if err != nil {
		return nil, err
	}
	files, err := filepath.Glob(filepath.Join(m.Dir, "deploy", "crds", "*.yaml"))
	if err != nil {
		return nil, err
	}
	var certificates, issuers bool
	for _, f := range files {
		switch filepath.Base(f) {
		case "cert-manager.io_certificates.yaml":
			certificates = true
		case "cert-manager.io_issuers.yaml":
			issuers = true
		}
	}
	if !certificates || !issuers {
		return nil, fmt.Errorf("%s@%s: no Certificate or Issuer CRD in %s (found %v)", m.Path, m.Version, filepath.Join(m.Dir, "deploy", "crds"), files)
	}
	sort.Strings(files)
	return files, nil
}

// goJSON runs the go command in root and decodes its JSON answer.
func goJSON(root string, args ...string) (goModule, error) {
	var m goModule
	gobin, err := exec.LookPath("go")
	if err != nil {
		return m, fmt.Errorf("finding %s needs the go command: %w", certManagerModule, err)
	}
	cmd := exec.Command(gobin, args...)
	cmd.Dir = root
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	// `go mod download -json` reports a module's error in its JSON and
	// exits non-zero; prefer that message.
	if err := json.Unmarshal(stdout.Bytes(), &m); err == nil && m.Error != nil {
		return m, fmt.Errorf("go %s: %s", strings.Join(args, " "), m.Error.Err)
	}
	if runErr != nil {
		return m, fmt.Errorf("go %s: %v: %s", strings.Join(args, " "), runErr, strings.TrimSpace(stderr.String()))
	}
	if err := json.Unmarshal(stdout.Bytes(), &m); err != nil {
		return m, fmt.Errorf("go %s: %w", strings.Join(args, " "), err)
	}
	return m, nil
}
