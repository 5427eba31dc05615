// Command wharf-healthcheck is the container health probe for images that
// have no shell and no curl (FROM scratch, distroless): it GETs wharf's
// /healthz and exits 0 on a 200, 1 otherwise.
//
// It stands in until wharf itself has a probe subcommand (then the
// HEALTHCHECK lines call that, and this directory goes). It imports only
// the standard library.
//
//	wharf-healthcheck                 http://127.0.0.1:<port of WHARF_LISTEN, default 5000>/healthz
//	wharf-healthcheck URL             that URL
//
// The container's environment is the probe's, so WHARF_LISTEN set for wharf
// also tells the probe where to look. A listen address given only in a
// config file or a flag needs the URL argument.
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

func main() {
	url := target(os.Args[1:], os.Getenv("WHARF_LISTEN"))
	if err := probe(url, 3*time.Second); err != nil {
		fmt.Fprintln(os.Stderr, "wharf-healthcheck:", err)
		os.Exit(1)
	}
}

// target is the URL to probe: the argument if given, else /healthz on
// loopback at listen's port (":5000" if listen is empty or has no port).
func target(args []string, listen string) string {
	if len(args) > 0 && args[0] != "" {
		return args[0]
	}
	port := "5000"
	if _, p, err := net.SplitHostPort(listen); err == nil && p != "" {
		port = p
	}
	return "http://" + net.JoinHostPort("127.0.0.1", port) + "/healthz"
}

func probe(url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", "wharf-healthcheck")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}
