package transport

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestWords: real failures of a request, as an operator reads them on
// the status page, without addresses or Go's error chain.
func TestWords(t *testing.T) {
	plain := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(plain.Close)
	tlsSrv := httptest.NewTLSServer(http.NotFoundHandler())
	t.Cleanup(tlsSrv.Close)
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()

	get := func(url string) error {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		defer tr.CloseIdleConnections()
		req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err == nil {
			resp.Body.Close()
			t.Fatalf("GET %s succeeded, want a failure", url)
		}
		return err
	}
	for _, c := range []struct {
		name string
		err  error
		want string
	}{
		{"refused", get(gone.URL + "/v2/"), "connection refused"},
		{"untrusted certificate", get(tlsSrv.URL + "/v2/"), "TLS certificate not trusted"},
		{"https to a plain server", get(strings.Replace(plain.URL, "http://", "https://", 1) + "/v2/"), "plain HTTP server behind an https:// URL"},
		{"header timeout", fmt.Errorf("%w after 3s", ErrHeaderTimeout), "no response headers in time"},
		{"other", errors.New("something new"), "something new"},
		{"long, as an upstream's own text can be", errors.New(strings.Repeat("x", 1<<20)), strings.Repeat("x", 200) + "…"},
	} {
		if got := Words(c.err); got != c.want {
			t.Errorf("%s: Words(%v) = %q, want %q", c.name, c.err, got, c.want)
		}
	}
}
