package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// startRelay runs a relay with link l in front of target until the test
// ends, and returns its address.
func startRelay(t testing.TB, target string, l link) (*relay, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := newRelay(target, l)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("relay: %v", err)
		}
	})
	return r, ln.Addr().String()
}

// startServer runs a TCP server that hands each connection to handle,
// until the test ends.
func startServer(t testing.TB, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { defer c.Close(); handle(c) })
		}
	})
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return ln.Addr().String()
}

// A connection's first answer takes the handshake's round trip plus one
// round trip (rtt/2 each way); the next answer on it, one round trip.
func TestRelayDelaysEachWay(t *testing.T) {
	echo := startServer(t, func(c net.Conn) { io.Copy(c, c) })
	const rtt = 100 * time.Millisecond
	_, addr := startRelay(t, echo, link{rtt: rtt})
	start := time.Now()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	roundTrip := func() time.Duration {
		t0 := time.Now()
		if _, err := c.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
			t.Fatal(err)
		}
		return time.Since(t0)
	}
	roundTrip()
	if d := time.Since(start); d < 2*rtt-10*time.Millisecond || d > 2*rtt+300*time.Millisecond {
		t.Errorf("first answer after %v, want about %v (handshake + one round trip)", d, 2*rtt)
	}
	if d := roundTrip(); d < rtt-10*time.Millisecond || d > rtt+300*time.Millisecond {
		t.Errorf("second answer after %v, want about %v", d, rtt)
	}
}

// The per-connection rate binds each connection alone: two connections at
// 8 MiB/s each move 2 MiB apiece in about a quarter of a second together;
// with the shared link also at 8 MiB/s, in about half a second.
func TestRelayCapsEachConnection(t *testing.T) {
	const n = 2 << 20
	payload := bytes.Repeat([]byte("wharf"), n/5+1)[:n]
	src := startServer(t, func(c net.Conn) { c.Write(payload) })
	for _, tc := range []struct {
		name     string
		l        link
		min, max time.Duration
	}{
		{"per connection", link{connRate: 8 << 20}, 220 * time.Millisecond, 450 * time.Millisecond},
		{"per connection and shared", link{connRate: 8 << 20, rate: 8 << 20}, 470 * time.Millisecond, 900 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, addr := startRelay(t, src, tc.l)
			start := time.Now()
			var wg sync.WaitGroup
			for range 2 {
				wg.Go(func() {
					c, err := net.Dial("tcp", addr)
					if err != nil {
						t.Error(err)
						return
					}
					defer c.Close()
					got, err := io.ReadAll(c)
					if err != nil || !bytes.Equal(got, payload) {
						t.Errorf("got %d bytes (%v), want the %d sent", len(got), err, n)
					}
				})
			}
			wg.Wait()
			if d := time.Since(start); d < tc.min || d > tc.max {
				t.Errorf("2 × 2 MiB took %v, want between %v and %v", d, tc.min, tc.max)
			}
			if got := r.down.Load(); got != 2*n {
				t.Errorf("counted %d bytes down, want %d", got, 2*n)
			}
		})
	}
}

// blockingWriter holds every write until release is closed, and keeps
// what it was given.
type blockingWriter struct {
	release chan struct{}
	got     bytes.Buffer
}

func (w *blockingWriter) Write(p []byte) (int, error) {
	<-w.release
	return w.got.Write(p)
}

// countingReader yields chunks of a pattern, and says on reads each
// time it is read.
type countingReader struct {
	left  int
	next  byte
	reads chan struct{}
}

func (r *countingReader) Read(p []byte) (int, error) {
	if r.left == 0 {
		return 0, io.EOF
	}
	r.reads <- struct{}{}
	k := min(len(p), r.left)
	for i := range k {
		p[i] = r.next
		r.next++
	}
	r.left -= k
	return k, nil
}

// When the receiver stops reading, the delay line fills to its bound and
// no further: the relay stops reading from the sender. Released, it
// delivers every byte, in order.
func TestDelayLineIsBounded(t *testing.T) {
	const total = 3 * lineChunks * chunkSize
	src := &countingReader{left: total, reads: make(chan struct{}, 4*lineChunks)}
	dst := &blockingWriter{release: make(chan struct{})}
	var zero, count = newCounter(0), newCounter(0)
	done := make(chan struct{})
	go func() {
		pipe(dst, src, direction{delay: zero, count: count}, func() {})
		close(done)
	}()
	for range lineChunks {
		<-src.reads
	}
	select {
	case <-src.reads:
		t.Fatalf("read %d chunks with the receiver stalled, want at most %d", lineChunks+1, lineChunks)
	case <-time.After(200 * time.Millisecond):
	}
	close(dst.release)
	<-done
	want := make([]byte, total)
	for i := range want {
		want[i] = byte(i)
	}
	if !bytes.Equal(dst.got.Bytes(), want) {
		t.Errorf("delivered %d bytes, want the %d sent, in order", dst.got.Len(), total)
	}
	if count.Load() != total {
		t.Errorf("counted %d bytes, want %d", count.Load(), total)
	}
}

// The control API changes the link under a running relay and reports it.
func TestControlSetsTheLink(t *testing.T) {
	r := newRelay("127.0.0.1:1", link{rate: 1, connRate: 2, rtt: time.Second})
	srv := httptest.NewServer(r.controlHandler())
	defer srv.Close()
	for _, q := range []string{"/rate?bps=100", "/connrate?bps=0", "/rtt?d=50ms"} {
		resp, err := http.Post(srv.URL+q, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			t.Errorf("POST %s: %s", q, resp.Status)
		}
	}
	for _, bad := range []string{"/rate?bps=-1", "/connrate?bps=lots", "/rtt?d=-1s", "/rtt?d=50"} {
		resp, err := http.Post(srv.URL+bad, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("POST %s: %s, want 400", bad, resp.Status)
		}
	}
	resp, err := http.Get(srv.URL + "/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st map[string]int64
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	if st["rate"] != 100 || st["conn_rate"] != 0 || st["rtt_ns"] != int64(50*time.Millisecond) || r.half.Load() != int64(25*time.Millisecond) {
		t.Errorf("stats %v, one-way delay %v: want rate 100, conn_rate 0, rtt 50ms, one way 25ms", st, time.Duration(r.half.Load()))
	}
}

// BenchmarkRelayUnlimited is the relay's own cost on an unpaced link with
// no delay, as the unthrottled scenarios use it: the delay line's hop
// between its two goroutines per 64 KiB chunk.
func BenchmarkRelayUnlimited(b *testing.B) {
	block := make([]byte, 1<<20)
	src := startServer(b, func(c net.Conn) {
		for {
			if _, err := c.Write(block); err != nil {
				return
			}
		}
	})
	_, addr := startRelay(b, src, link{})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 1<<20)
	b.SetBytes(1 << 20)
	b.ResetTimer()
	for range b.N {
		if _, err := io.ReadFull(c, buf); err != nil {
			b.Fatal(err)
		}
	}
}
