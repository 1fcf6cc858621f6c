package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

// fetchProfile asks a net/http/pprof profile endpoint for secs seconds of
// CPU profile and writes it to path, or to path.N when path exists (one
// file per round).
func fetchProfile(ctx context.Context, url string, secs int, path string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(secs+30)*time.Second)
	defer cancel()
	return fetchURL(ctx, fmt.Sprintf("%s?seconds=%d", url, secs), path)
}

// fetchURL writes what a net/http/pprof endpoint answers (a heap profile,
// say) to path, or to path.N when path exists.
func fetchURL(ctx context.Context, url, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s answered %s: %s", url, resp.Status, strings.TrimSpace(string(b)))
	}
	out := path
	for n := 1; ; n++ {
		if _, err := os.Stat(out); os.IsNotExist(err) {
			break
		}
		out = fmt.Sprintf("%s.%d", path, n)
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(f, resp.Body)
	return err
}
