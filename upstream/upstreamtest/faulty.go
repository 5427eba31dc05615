package upstreamtest

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// Request is a request Faulty saw.
type Request struct {
	Method string
	Path   string
	Query  string
	Header http.Header // as the client sent it
	CDN    bool        // seen by the CDN listener
}

// Faulty is a reverse proxy in front of a registry that injects faults
// per request, for what a real registry will not do on demand. It listens
// on two addresses: URL, the registry's stand-in, and CDNURL, where
// Redirect faults send clients. SetFault's function sees requests to both
// (tell them apart by Host, or Request.CDN in Requests).
type Faulty struct {
	URL     string // http://127.0.0.1:port
	Host    string // 127.0.0.1:port
	CDNURL  string // http://127.0.0.1:port of the CDN
	CDNHost string

	target string
	tr     *http.Transport
	srv    *httptest.Server
	cdn    *httptest.Server

	mu       sync.Mutex
	fault    func(*http.Request) Fault
	seen     []Request
	noRecord bool              // StopRecording
	redirect map[string]string // one-time CDN token → Authorization of the redirected request
	nextID   int

	blobBytes atomic.Int64    // body bytes of blob GETs sent, on either listener
	conns     [2]atomic.Int32 // TCP connections accepted: [0] registry, [1] CDN
}

// NewFaulty starts a Faulty in front of target (a registry's base URL,
// such as Registry.URL). It passes everything through until SetFault. It
// is closed by t.Cleanup.
func NewFaulty(t testing.TB, target string) *Faulty {
	t.Helper()
	f := &Faulty{
		target:   strings.TrimRight(target, "/"),
		tr:       http.DefaultTransport.(*http.Transport).Clone(),
		redirect: map[string]string{},
	}
	f.tr.DisableCompression = true // pass bodies through byte for byte
	f.tr.MaxIdleConnsPerHost = 64  // a burst of requests through it reuses its connections to the registry
	f.srv = f.listen(false)
	f.cdn = f.listen(true)
	f.URL, f.Host = f.srv.URL, strings.TrimPrefix(f.srv.URL, "http://")
	f.CDNURL, f.CDNHost = f.cdn.URL, strings.TrimPrefix(f.cdn.URL, "http://")
	t.Cleanup(f.close)
	return f
}

// listen starts the registry's (cdn false) or the CDN's listener,
// counting the connections it accepts.
func (f *Faulty) listen(cdn bool) *httptest.Server {
	i := 0
	if cdn {
		i = 1
	}
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { f.serve(w, r, cdn) }))
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			f.conns[i].Add(1)
		}
	}
	s.Start()
	return s
}

// Conns returns how many TCP connections the registry's listener and the
// CDN's have accepted: with connections kept alive and reused, at most
// the number of requests a client had in flight at once, not one per
// request. ResetCounts does not reset them.
func (f *Faulty) Conns() (registry, cdn int) {
	return int(f.conns[0].Load()), int(f.conns[1].Load())
}

func (f *Faulty) close() {
	for _, s := range []*httptest.Server{f.srv, f.cdn} {
		s.CloseClientConnections() // ends stalled handlers
		s.Close()
	}
	f.tr.CloseIdleConnections()
}

// SetFault sets the function deciding each request's fault; nil passes
// everything through. It is called once per request, in the handler's
// goroutine, so it may count requests to fault only some of them.
func (f *Faulty) SetFault(fn func(r *http.Request) Fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fault = fn
}

// Requests returns the requests seen so far, in arrival order.
func (f *Faulty) Requests() []Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Request(nil), f.seen...)
}

// Count returns how many requests with method ("" for any) and a path
// containing pathContains were seen, on either listener.
func (f *Faulty) Count(method, pathContains string) int {
	n := 0
	for _, r := range f.Requests() {
		if (method == "" || r.Method == method) && strings.Contains(r.Path, pathContains) {
			n++
		}
	}
	return n
}

// BlobGets returns how many GETs of blobs reached the registry side,
// ranged ones included; a redirected GET and its CDN hop count once.
func (f *Faulty) BlobGets() int {
	n := 0
	for _, r := range f.Requests() {
		if !r.CDN && r.Method == http.MethodGet && strings.Contains(r.Path, "/blobs/") {
			n++
		}
	}
	return n
}

// BlobBytes returns how many body bytes of blob GETs were sent to
// clients, on either listener (a redirected GET counts at the CDN),
// whole or in part: what an upstream bills as egress, to compare with an
// image's size. ResetCounts sets it back to 0.
func (f *Faulty) BlobBytes() int64 { return f.blobBytes.Load() }

// StopRecording stops keeping the requests seen, for long soak tests
// whose request log would grow without bound; Requests and the counts
// then report what was seen before.
func (f *Faulty) StopRecording() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.noRecord = true
}

// ResetCounts forgets the requests seen so far.
func (f *Faulty) ResetCounts() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seen = nil
	f.blobBytes.Store(0)
}

func (f *Faulty) serve(w http.ResponseWriter, r *http.Request, cdn bool) {
	f.mu.Lock()
	if !f.noRecord {
		f.seen = append(f.seen, Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Header: r.Header.Clone(), CDN: cdn})
	}
	fn := f.fault
	f.mu.Unlock()
	var ft Fault
	if fn != nil {
		ft = fn(r)
	}
	if ft.Reset {
		panic(http.ErrAbortHandler) // net/http closes the connection and logs nothing
	}
	if !sleep(r.Context(), ft.Delay) {
		return
	}
	for k, vs := range ft.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	switch {
	case ft.Status != 0:
		f.writeError(w, r, ft)
	case ft.Redirect && !cdn && f.wouldServe(r):
		f.writeRedirect(w, r)
	default:
		f.forward(w, r, ft, cdn)
	}
}

// wouldServe asks the registry (HEAD, same headers) whether it would
// answer r with a 2xx: a registry challenges an unauthenticated request
// before redirecting it, and so does Faulty.
func (f *Faulty) wouldServe(r *http.Request) bool {
	out, err := http.NewRequestWithContext(r.Context(), http.MethodHead, f.target+r.URL.RequestURI(), nil)
	if err != nil {
		return false
	}
	out.Header = r.Header.Clone()
	resp, err := f.tr.RoundTrip(out)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode/100 == 2
}

// writeRedirect sends the client to the CDN with a one-time token standing
// for the credentials of this request.
func (f *Faulty) writeRedirect(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.nextID++
	id := fmt.Sprintf("t%d", f.nextID)
	f.redirect[id] = r.Header.Get("Authorization")
	f.mu.Unlock()
	q := r.URL.Query()
	q.Set(cdnTokenParam, id)
	http.Redirect(w, r, f.CDNURL+r.URL.Path+"?"+q.Encode(), http.StatusTemporaryRedirect)
}

const cdnTokenParam = "upstreamtest-cdn"

// hopHeaders are not forwarded by a proxy (RFC 9110 §7.6.1).
func hopHeaders() []string {
	return []string{"Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}
}

// forward asks the registry and sends its answer through ft's body faults.
func (f *Faulty) forward(w http.ResponseWriter, r *http.Request, ft Fault, cdn bool) {
	u := *r.URL
	header := r.Header.Clone()
	if cdn {
		q := u.Query()
		id := q.Get(cdnTokenParam)
		f.mu.Lock()
		auth, ok := f.redirect[id]
		delete(f.redirect, id)
		f.mu.Unlock()
		if !ok {
			http.Error(w, "unknown or used CDN token", http.StatusForbidden)
			return
		}
		q.Del(cdnTokenParam)
		u.RawQuery = q.Encode()
		header.Del("Authorization")
		if auth != "" {
			header.Set("Authorization", auth)
		}
	}
	out, err := http.NewRequestWithContext(r.Context(), r.Method, f.target+u.RequestURI(), r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	out.ContentLength = r.ContentLength
	out.Header = header
	for _, h := range hopHeaders() {
		out.Header.Del(h)
	}
	if ft.IgnoreRange {
		out.Header.Del("Range")
	}
	if !cdn {
		out.Host = r.Host // so the registry's absolute URLs (upload Locations) point back here
	}
	resp, err := f.tr.RoundTrip(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, vs := range resp.Header {
		w.Header()[k] = append(w.Header()[k], vs...)
	}
	for _, h := range hopHeaders() {
		w.Header().Del(h)
	}
	for _, h := range ft.DropHeader {
		w.Header()[http.CanonicalHeaderKey(h)] = nil // nil, not deleted: net/http would sniff a Content-Type
	}
	var body io.Reader = resp.Body
	if ft.Body != nil {
		body = bytes.NewReader(ft.Body)
		w.Header().Set("Content-Length", strconv.Itoa(len(ft.Body)))
	}
	w.WriteHeader(resp.StatusCode)
	if r.Method == http.MethodHead {
		return
	}
	var sent *atomic.Int64
	if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") {
		sent = &f.blobBytes
	}
	copyFaulty(w, r, body, ft, sent)
}
