package framework

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// modulePath is this repository's Go module, used to find its root.
const modulePath = "github.com/nodeclass-guard/nodeclass-guard"

// Environment variables the harness reads.
const (
	// EnvAssets is envtest's own variable: the folder holding kube-apiserver
	// and etcd. Default: bin/k8s/<KUBERNETES_VERSION> (make envtest-assets).
	EnvAssets = "KUBEBUILDER_ASSETS"
	// EnvCRDDir is the folder holding Karpenter's CRDs, one subfolder per
	// set (v1, v1beta1). Default: bin/crds (make crds).
	EnvCRDDir = "NCG_CRD_DIR"
	// EnvRequire turns missing assets into a failure instead of a skip
	// (`make test` sets it).
	EnvRequire = "NCG_REQUIRE_ENVTEST"
	// EnvBinary names a prebuilt nodeclass-guard binary to use instead of
	// building ./cmd/nodeclass-guard.
	EnvBinary = "NCG_BINARY"
)

// MissingAssetsError says that envtest's binaries or Karpenter's CRDs are
// not where the harness looks. Tests skip on it unless NCG_REQUIRE_ENVTEST=1.
type MissingAssetsError struct {
	What string // what is missing, with the path looked at
}

func (e *MissingAssetsError) Error() string {
	return fmt.Sprintf("envtest: %s; run `make envtest-assets crds` (or set %s and %s)", e.What, EnvAssets, EnvCRDDir)
}

// Required reports whether NCG_REQUIRE_ENVTEST asks that missing assets fail
// the tests rather than skip them.
func Required() bool {
	v := os.Getenv(EnvRequire)
	return v != "" && v != "0" && !strings.EqualFold(v, "false")
}

// RepoRoot returns the root of this repository: the nearest folder, from
// the working directory up, whose go.mod declares this module.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil {
			if declaresModule(string(b)) {
				return dir, nil
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod for module %s above the working directory", modulePath)
		}
		dir = parent
	}
}

func declaresModule(gomod string) bool {
	for _, line := range strings.Split(gomod, "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == "module" && f[1] == modulePath {
			return true
		}
	}
	return false
}

// Versions reads hack/versions.env (KEY=VALUE lines, # comments).
func Versions(root string) (map[string]string, error) {
	path := filepath.Join(root, "hack", "versions.env")
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("%s:%d: want KEY=VALUE, got %q", path, n, line)
		}
		out[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return out, sc.Err()
}

// assetsDir finds kube-apiserver and etcd.
func assetsDir(root string) (string, error) {
	dir := os.Getenv(EnvAssets)
	if dir == "" {
		v, err := Versions(root)
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
			return "", &MissingAssetsError{What: fmt.Sprintf("no %s in %s", bin, dir)}
		}
	}
	return dir, nil
}

// crdFiles lists the CRD files of a set: Karpenter's EC2NodeClass and
// NodePool from NCG_CRD_DIR/<set>, and the EKS Auto Mode NodeClass stand-in
// from e2e/crds.
func crdFiles(root string, set CRDSet) ([]string, error) {
	dir := os.Getenv(EnvCRDDir)
	if dir == "" {
		dir = filepath.Join(root, "bin", "crds")
	}
	files := []string{
		filepath.Join(dir, string(set), "karpenter.k8s.aws_ec2nodeclasses.yaml"),
		filepath.Join(dir, string(set), "karpenter.sh_nodepools.yaml"),
		// The update guard reads NodeClaims.
		filepath.Join(dir, string(set), "karpenter.sh_nodeclaims.yaml"),
	}
	for _, f := range files {
		if _, err := os.Stat(f); err != nil {
			return nil, &MissingAssetsError{What: fmt.Sprintf("no Karpenter CRD %s", f)}
		}
	}
	eks := filepath.Join(root, "e2e", "crds", "eks.amazonaws.com_nodeclasses.yaml")
	if _, err := os.Stat(eks); err != nil {
		return nil, fmt.Errorf("the EKS NodeClass test CRD: %w", err)
	}
	return append(files, eks), nil
}
