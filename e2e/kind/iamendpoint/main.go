// Command iamendpoint serves e2e/iamserver, the local IAM endpoint speaking
// IAM's Query API from a snapshot, over plain HTTP. hack/e2e-kind.sh runs it
// as a pod, so that the webhook's live IAM path (--iam-endpoint, the real
// AWS SDK) is exercised from inside the cluster. GET /calls reports how
// many IAM calls it has answered.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
	"github.com/nodeclass-guard/nodeclass-guard/e2e/iamserver"
)

func main() {
	snapshot := flag.String("snapshot", "/etc/iam/snapshot.json", "IAM snapshot file (aws iam get-account-authorization-details)")
	addr := flag.String("listen", ":8080", "listen address")
	flag.Parse()
	if err := run(*snapshot, *addr); err != nil {
		fmt.Fprintf(os.Stderr, "iamendpoint: %v\n", err)
		os.Exit(1)
	}
}

func run(snapshot, addr string) error {
	snap, err := authz.LoadSnapshotFile(snapshot)
	if err != nil {
		return err
	}
	iam := iamserver.New(snap)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /calls", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "%d\n", iam.TotalCalls())
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.Handle("/", iam)
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	fmt.Fprintf(os.Stderr, "iamendpoint: serving %s on %s\n", snapshot, addr)
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
