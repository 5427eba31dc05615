package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "relay:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("relay", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "address clients connect to")
	target := fs.String("target", "", "upstream address (host:port)")
	control := fs.String("control", "127.0.0.1:0", "address of the control API (/stats, /rate)")
	rate := fs.Int64("rate", 200<<20, "bytes per second from the upstream, shared by all connections; 0 is unlimited")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *target == "" {
		return errors.New("--target is required")
	}
	r := &relay{target: *target, pace: newPacer(*rate)}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	cln, err := net.Listen("tcp", *control)
	if err != nil {
		return err
	}
	ctl := &http.Server{Handler: r.controlHandler(), ReadHeaderTimeout: 5 * time.Second}
	go ctl.Serve(cln)
	fmt.Printf("relay %s -> %s, control %s, rate %d B/s\n", ln.Addr(), *target, cln.Addr(), *rate)
	go func() {
		<-ctx.Done()
		ln.Close()
		ctl.Close()
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		go r.serve(c)
	}
}

// relay forwards connections to target.
type relay struct {
	target   string
	pace     *pacer
	down, up atomic.Int64 // bytes from the upstream, bytes to it
	conns    atomic.Int64
}

func (r *relay) serve(c net.Conn) {
	defer c.Close()
	u, err := net.Dial("tcp", r.target)
	if err != nil {
		return
	}
	defer u.Close()
	r.conns.Add(1)
	var once sync.Once
	done := make(chan struct{})
	closeBoth := func() { once.Do(func() { c.Close(); u.Close(); close(done) }) }
	go func() {
		r.copy(u, c, &r.up, nil)
		closeBoth()
	}()
	r.copy(c, u, &r.down, r.pace)
	closeBoth()
	<-done
}

// copy moves bytes from src to dst, counting them and, with a pacer,
// holding each read back until the shared link has room for it. A plain
// read/write loop (not splice) is what lets every chunk be paced and
// counted as it passes.
func (r *relay) copy(dst io.Writer, src io.Reader, n *atomic.Int64, p *pacer) {
	buf := make([]byte, 64<<10)
	for {
		k, err := src.Read(buf)
		if k > 0 {
			n.Add(int64(k))
			if p != nil {
				p.wait(k)
			}
			if _, werr := dst.Write(buf[:k]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (r *relay) controlHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]int64{
			"down": r.down.Load(), "up": r.up.Load(), "conns": r.conns.Load(), "rate": r.pace.rate.Load(),
		})
	})
	mux.HandleFunc("POST /rate", func(w http.ResponseWriter, req *http.Request) {
		bps, err := strconv.ParseInt(req.URL.Query().Get("bps"), 10, 64)
		if err != nil || bps < 0 {
			http.Error(w, "bps: want a number of bytes per second, 0 for unlimited", http.StatusBadRequest)
			return
		}
		r.pace.rate.Store(bps)
		w.WriteHeader(http.StatusNoContent)
	})
	return mux
}
