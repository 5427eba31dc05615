package lease_test

import (
	"context"
	"testing"

	"github.com/wharf-mirror/wharf/lease"
)

// Holder names the replica holding a lease while it does, and nobody
// once it gave the lease up.
func TestHolderNamesWhoHoldsTheLease(t *testing.T) {
	r, _ := bucket(t)
	j := newJobs()
	l := run(t, r, "a:7946", j)
	if e := j.next(t, ttl); e != "a:7946 start" {
		t.Fatalf("event %q, want a's job to start", e)
	}
	ctx := context.Background()
	if h, renewed, err := lease.Holder(ctx, r, "evict"); err != nil || h != "a:7946" || renewed == "" {
		t.Errorf("Holder while a holds it: %q, %q, %v", h, renewed, err)
	}
	l.Close()
	if e := j.next(t, ttl); e != "a:7946 end" {
		t.Fatalf("event %q, want a's job to end", e)
	}
	if h, _, err := lease.Holder(ctx, r, "evict"); err != nil || h != "" {
		t.Errorf("Holder once a gave the lease up: %q, %v; want nobody", h, err)
	}
}
