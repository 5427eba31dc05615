package main

import (
	"io"
	"sync/atomic"
	"time"
)

// The delay line's bounds: at most lineChunks chunks of chunkSize bytes are
// in flight in one direction of one connection (4 MiB), so a connection
// whose reader stalls holds the relay to that much and no more; the relay
// then stops reading from the sender, whose TCP window fills, as on a real
// link. The bound also caps a connection at 4 MiB per one-way delay
// (160 MiB/s at 25 ms), which a real TCP window would too.
const (
	chunkSize  = 64 << 10
	lineChunks = 64
)

// chunk is bytes read from one side, held until due.
type chunk struct {
	buf []byte
	n   int
	due time.Time
}

// direction is how one direction of a connection behaves: its one-way
// delay, read at every chunk (so the control API changes it under open
// connections), the pacers each chunk waits for, and its byte counter.
type direction struct {
	delay  *atomic.Int64 // nanoseconds
	pacers []*pacer
	count  *atomic.Int64
}

// pipe copies src to dst through a delay line until either side fails.
// Its reader (the calling goroutine) reads a chunk, waits for the pacers
// (the link's serialisation) and stamps it due one delay later (its
// propagation); its writer goroutine holds each chunk until it is due and
// writes it. On a failed write it calls abort, which must close src so
// that the reader ends too. pipe returns when both have ended.
func pipe(dst io.Writer, src io.Reader, d direction, abort func()) {
	full := make(chan chunk, lineChunks)
	free := make(chan []byte, lineChunks) // never blocks: at most lineChunks buffers exist
	failed := make(chan struct{})
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		for c := range full {
			if wait := time.Until(c.due); wait > 0 {
				time.Sleep(wait)
			}
			if _, err := dst.Write(c.buf[:c.n]); err != nil {
				close(failed)
				abort()
				for range full { // the reader may still send what it holds
				}
				return
			}
			free <- c.buf
		}
	}()
	defer func() {
		close(full)
		<-writerDone
	}()
	allocated := 0
	for {
		var buf []byte
		select {
		case buf = <-free:
		default:
			if allocated < lineChunks {
				allocated++
				buf = make([]byte, chunkSize)
				break
			}
			select { // the line is full: wait for the writer
			case buf = <-free:
			case <-failed:
				return
			}
		}
		k, err := src.Read(buf)
		if k > 0 {
			d.count.Add(int64(k))
			for _, p := range d.pacers {
				p.wait(k)
			}
			full <- chunk{buf, k, time.Now().Add(time.Duration(d.delay.Load()))} // never blocks: see free
		}
		if err != nil {
			return
		}
	}
}
