package main

import (
	"sync"
	"sync/atomic"
	"time"
)

// pacer holds one link's bytes to its rate. It keeps a virtual clock of
// when the link is next free: a chunk of n bytes is sent at that time (or
// now, if the link has been idle, so no credit builds up) and moves the
// clock on by n/rate. Sleeping too long does not slow the link down,
// because the clock moves by the bytes, not by the sleeps; the next chunk
// then simply does not wait.
//
// The rate is read at every chunk from an atomic the pacer does not own,
// so the control API changes it for every connection at once: the shared
// link has one pacer, each connection its own on the relay's per-connection
// rate.
type pacer struct {
	rate *atomic.Int64 // bytes per second; 0 is unlimited
	mu   sync.Mutex
	next time.Time
}

func newPacer(rate *atomic.Int64) *pacer { return &pacer{rate: rate} }

// wait blocks until n more bytes may pass.
func (p *pacer) wait(n int) {
	rate := p.rate.Load()
	if rate <= 0 {
		return
	}
	p.mu.Lock()
	now := time.Now()
	if p.next.Before(now) {
		p.next = now
	}
	at := p.next
	p.next = p.next.Add(time.Duration(float64(n) / float64(rate) * float64(time.Second)))
	p.mu.Unlock()
	if d := at.Sub(now); d > 0 {
		time.Sleep(d)
	}
}
