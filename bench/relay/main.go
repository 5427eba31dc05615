package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"
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

// defaultRTT is a round trip to a registry in another region.
const defaultRTT = 50 * time.Millisecond

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("relay", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "address clients connect to")
	target := fs.String("target", "", "upstream address (host:port)")
	control := fs.String("control", "127.0.0.1:0", "address of the control API (/stats, /rate, /connrate, /rtt)")
	var l link
	fs.Int64Var(&l.rate, "rate", 200<<20, "bytes per second from the upstream, shared by all connections; 0 is unlimited")
	fs.Int64Var(&l.connRate, "conn-rate", 25<<20, "bytes per second from the upstream, per connection; 0 is unlimited")
	fs.DurationVar(&l.rtt, "rtt", defaultRTT, "round-trip time: each byte is held rtt/2 each way, and a new connection one rtt")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *target == "" {
		return errors.New("--target is required")
	}
	if l.rate < 0 || l.connRate < 0 || l.rtt < 0 {
		return errors.New("--rate, --conn-rate and --rtt must not be negative")
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	cln, err := net.Listen("tcp", *control)
	if err != nil {
		ln.Close()
		return err
	}
	r := newRelay(*target, l)
	fmt.Printf("relay %s -> %s, control %s, rate %d B/s, per connection %d B/s, rtt %v\n",
		ln.Addr(), *target, cln.Addr(), l.rate, l.connRate, l.rtt)
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return r.serve(ctx, ln) })
	g.Go(func() error { return r.serveControl(ctx, cln) })
	return g.Wait()
}
