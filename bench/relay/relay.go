package main

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// relay forwards connections to target over a simulated link: one rate
// shared by all connections, a rate per connection and a round-trip time,
// all changeable while it runs (the control API).
type relay struct {
	target   string
	rate     atomic.Int64 // bytes per second from the upstream, all connections together; 0 unlimited
	connRate atomic.Int64 // bytes per second from the upstream, per connection; 0 unlimited
	rtt      atomic.Int64 // round-trip time, nanoseconds
	half     atomic.Int64 // rtt/2: the one-way delay
	link     *pacer       // on rate
	down, up atomic.Int64 // bytes from the upstream, bytes to it
	conns    atomic.Int64
}

// link is what a relay simulates.
type link struct {
	rate, connRate int64 // bytes per second; 0 is unlimited
	rtt            time.Duration
}

func newRelay(target string, l link) *relay {
	r := &relay{target: target}
	r.link = newPacer(&r.rate)
	r.rate.Store(l.rate)
	r.connRate.Store(l.connRate)
	r.setRTT(l.rtt)
	return r
}

func (r *relay) setRTT(d time.Duration) {
	r.rtt.Store(int64(d))
	r.half.Store(int64(d / 2))
}

// serve accepts connections on ln until ctx ends, then closes every
// connection and returns once each has ended.
func (r *relay) serve(ctx context.Context, ln net.Listener) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		wg.Go(func() { r.conn(ctx, c) })
	}
}

// conn relays one connection: after one round trip (the TCP handshake a
// remote upstream costs), each direction through its own delay line, the
// download also through the connection's pacer and the link's.
func (r *relay) conn(ctx context.Context, c net.Conn) {
	defer c.Close()
	if rtt := time.Duration(r.rtt.Load()); rtt > 0 {
		t := time.NewTimer(rtt)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
	}
	var d net.Dialer
	u, err := d.DialContext(ctx, "tcp", r.target)
	if err != nil {
		return
	}
	defer u.Close()
	r.conns.Add(1)
	var once sync.Once
	closeBoth := func() { once.Do(func() { c.Close(); u.Close() }) }
	stop := context.AfterFunc(ctx, closeBoth)
	defer stop()
	var wg sync.WaitGroup
	wg.Go(func() {
		pipe(u, c, direction{delay: &r.half, count: &r.up}, closeBoth)
		closeBoth()
	})
	down := direction{delay: &r.half, count: &r.down, pacers: []*pacer{newPacer(&r.connRate), r.link}}
	pipe(c, u, down, closeBoth)
	closeBoth()
	wg.Wait()
}

// controlHandler is the control API: GET /stats, POST /rate?bps=N,
// POST /connrate?bps=N, POST /rtt?d=50ms.
func (r *relay) controlHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]int64{
			"down": r.down.Load(), "up": r.up.Load(), "conns": r.conns.Load(),
			"rate": r.rate.Load(), "conn_rate": r.connRate.Load(), "rtt_ns": r.rtt.Load(),
		})
	})
	setRate := func(v *atomic.Int64) http.HandlerFunc {
		return func(w http.ResponseWriter, req *http.Request) {
			bps, err := strconv.ParseInt(req.URL.Query().Get("bps"), 10, 64)
			if err != nil || bps < 0 {
				http.Error(w, "bps: want a number of bytes per second, 0 for unlimited", http.StatusBadRequest)
				return
			}
			v.Store(bps)
			w.WriteHeader(http.StatusNoContent)
		}
	}
	mux.HandleFunc("POST /rate", setRate(&r.rate))
	mux.HandleFunc("POST /connrate", setRate(&r.connRate))
	mux.HandleFunc("POST /rtt", func(w http.ResponseWriter, req *http.Request) {
		d, err := time.ParseDuration(req.URL.Query().Get("d"))
		if err != nil || d < 0 {
			http.Error(w, "d: want a duration such as 50ms, 0 for none", http.StatusBadRequest)
			return
		}
		r.setRTT(d)
		w.WriteHeader(http.StatusNoContent)
	})
	return mux
}

// serveControl serves the control API on ln until ctx ends.
func (r *relay) serveControl(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: r.controlHandler(), ReadHeaderTimeout: 5 * time.Second}
	stop := context.AfterFunc(ctx, func() { srv.Close() })
	defer stop()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
