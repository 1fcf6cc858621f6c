package framework

import (
	"context"
	"os/exec"
	"strconv"
	"time"
)

// Replica is one more `nodeclass-guard serve` started like the Env's own
// (same flags, identity, certificate and IAM source) on its own listeners:
// the second pod of a Deployment. It is not registered with the API server;
// it shares the cluster (leader election, Events) with the first.
type Replica struct {
	WebhookURL, MetricsURL, HealthURL string
	p                                 *serveProcess
}

// StartReplica starts a Replica and waits until it is ready. Stop it when
// done (the Env does not).
func (e *Env) StartReplica(ctx context.Context) (*Replica, error) {
	ports, err := FreePorts(3)
	if err != nil {
		return nil, err
	}
	metricsAddr, healthAddr := "127.0.0.1:"+strconv.Itoa(ports[1]), "127.0.0.1:"+strconv.Itoa(ports[2])
	p, err := startServe(e.serveBin, e.serveArgs(ports[0], metricsAddr, healthAddr), e.serveEnv, e.Options.ServeOutput)
	if err != nil {
		return nil, err
	}
	r := &Replica{WebhookURL: "https://127.0.0.1:" + strconv.Itoa(ports[0]), MetricsURL: "http://" + metricsAddr, HealthURL: "http://" + healthAddr, p: p}
	readyCtx, cancel := context.WithTimeout(ctx, e.Options.Timeout)
	defer cancel()
	if err := p.waitReady(readyCtx, healthAddr); err != nil {
		_ = p.stop(10 * time.Second)
		return nil, err
	}
	return r, nil
}

// Log returns everything the replica has printed so far.
func (r *Replica) Log() string { return r.p.log.String() }

// Stop stops the replica (SIGTERM, then SIGKILL after 10s).
func (r *Replica) Stop() error { return r.p.stop(10 * time.Second) }

// Command returns the nodeclass-guard binary with args, in serve's
// environment (the local IAM endpoint's dummy credentials, no AWS_
// variables of the developer's): for `nodeclass-guard audit` or `check`
// against this Env. IAMArgs gives the flags that reach the same IAM.
func (e *Env) Command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, e.serveBin, args...)
	cmd.Env = e.serveEnv
	return cmd
}

// IAMArgs are serve's flags naming the cluster and the IAM source
// (--controller-role, --cluster-name, --region, --on-iam-error,
// --iam-timeout, and --iam-endpoint or --iam-snapshot).
func (e *Env) IAMArgs() []string { return append([]string(nil), e.serveTail...) }

// StopServe stops the Env's own serve (SIGTERM, then SIGKILL after 10s),
// as a rolling update stops a pod: the webhook registration then points at
// nothing, so only the last test of an Env may call it.
func (e *Env) StopServe() error { return e.serve.stop(10 * time.Second) }
