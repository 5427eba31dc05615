package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"
)

// healthcheck is the container health probe for images with no shell and
// no curl (scratch, distroless): it GETs /healthz and fails unless the
// answer is 200. With no URL it probes loopback at the port of
// WHARF_LISTEN (default 5000): the container's environment is wharf's, so
// the variable that sets wharf's address also tells the probe where to
// look. A listen address given only in a config file or a flag needs the
// URL argument.
func healthcheck(ctx context.Context, args []string, stderr io.Writer) error {
	url := probeTarget(args, os.Getenv("WHARF_LISTEN"))
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	req.Header.Set("User-Agent", "wharf-healthcheck/"+version)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: GET %s: %s", url, resp.Status)
	}
	return nil
}

// probeTarget is the URL to probe: the argument if given, else /healthz on
// loopback at listen's port (":5000" when listen is empty or has no port).
func probeTarget(args []string, listen string) string {
	if len(args) > 0 && args[0] != "" {
		return args[0]
	}
	port := "5000"
	if _, p, err := net.SplitHostPort(listen); err == nil && p != "" {
		port = p
	}
	return "http://" + net.JoinHostPort("127.0.0.1", port) + "/healthz"
}
