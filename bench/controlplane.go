package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// ControlPlane is a kube-apiserver and etcd (envtest) serving Karpenter's
// CRDs: what `serve`'s controller-runtime manager needs to start. The
// harness calls the webhook directly, as the API server would, so no
// webhook configuration is registered.
type ControlPlane struct {
	// Kubeconfig is the path of an admin kubeconfig for serve.
	Kubeconfig string
	env        *envtest.Environment
}

// StartControlPlane starts kube-apiserver and etcd from assets (a folder
// holding both binaries), installs the CRD files, and writes an admin
// kubeconfig into dir.
func StartControlPlane(assets string, crds []string, dir string) (*ControlPlane, error) {
	for _, bin := range []string{"kube-apiserver", "etcd"} {
		if _, err := os.Stat(filepath.Join(assets, bin)); err != nil {
			return nil, fmt.Errorf("envtest assets: %w (run `make envtest-assets`)", err)
		}
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory:    assets,
		ControlPlaneStartTimeout: 2 * time.Minute,
		ControlPlaneStopTimeout:  time.Minute,
		CRDInstallOptions:        envtest.CRDInstallOptions{Paths: crds, ErrorIfPathMissing: true},
	}
	if _, err := env.Start(); err != nil {
		return nil, fmt.Errorf("starting envtest: %w", err)
	}
	cp := &ControlPlane{env: env}
	user, err := env.AddUser(envtest.User{Name: "nodeclass-guard-bench", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		cp.Stop()
		return nil, fmt.Errorf("provisioning serve's user: %w", err)
	}
	kc, err := user.KubeConfig()
	if err != nil {
		cp.Stop()
		return nil, err
	}
	cp.Kubeconfig = filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(cp.Kubeconfig, kc, 0o600); err != nil {
		cp.Stop()
		return nil, err
	}
	return cp, nil
}

// Stop stops the API server and etcd.
func (cp *ControlPlane) Stop() error { return cp.env.Stop() }
