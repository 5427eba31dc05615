package writethrough

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/wharf-mirror/wharf/cache/index"
	"github.com/wharf-mirror/wharf/cache/records"
	"github.com/wharf-mirror/wharf/cache/s3/s3test"
	"github.com/wharf-mirror/wharf/oci"
	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

func sharedRecords(t *testing.T) records.Store {
	return s3test.OpenStore(t, s3test.Own(t)).Records()
}

// The shared queue answers as the index's does: jobs oldest first, a
// missing one wrapping index.ErrNotFound, keys of any bytes.
func TestSharedQueueIsAQueue(t *testing.T) {
	q := SharedQueue{Records: sharedRecords(t)}
	t0 := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	d := digest.FromString("x")
	keys := []string{
		index.JobKey("docker.io/team/app", "v2", d),
		index.DeleteJobKey("docker.io/team/app", index.OpDeleteTag, "v1", ""),
		index.JobKey("docker.io/team/app", "", d), // a push by digest: an empty tag field
	}
	for i, k := range keys {
		j := index.Job{Repo: "docker.io/team/app", Digest: d, Enqueued: t0.Add(time.Duration(len(keys)-i) * time.Second)}
		if err := q.PutJob(k, j); err != nil {
			t.Fatal(err)
		}
	}
	var order []string
	if err := q.Jobs(func(k string, _ index.Job) error { order = append(order, k); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(order) != 3 || order[0] != keys[2] || order[1] != keys[1] || order[2] != keys[0] {
		t.Fatalf("Jobs order = %q, want oldest first: %q", order, []string{keys[2], keys[1], keys[0]})
	}
	if j, err := q.Job(keys[1]); err != nil || !j.Enqueued.Equal(t0.Add(2*time.Second)) {
		t.Fatalf("Job = %+v, %v", j, err)
	}
	if err := q.DeleteJob(keys[1]); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Job(keys[1]); !errors.Is(err, index.ErrNotFound) {
		t.Fatalf("Job after DeleteJob: %v, want index.ErrNotFound", err)
	}
}

// A Worker on a shared queue runs no job while another replica leads:
// the push stays queued through the loop's polls; once it leads, the job
// reaches the upstream and leaves the queue; when its lead ends it stops.
func TestSharedWorkerRunsJobsOnlyWhileLeading(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	faulty := upstreamtest.NewFaulty(t, reg.URL)
	putSeen := make(chan struct{}, 10)
	faulty.SetFault(func(r *http.Request) upstreamtest.Fault {
		if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/manifests/") {
			putSeen <- struct{}{}
		}
		return upstreamtest.Fault{}
	})
	q := SharedQueue{Records: sharedRecords(t)}
	s := newStackOn(t, faulty.URL, Options{Shared: true, Poll: 20 * time.Millisecond, Backoff: time.Hour}, q)

	if err := s.push(t, "team/app"); err != nil {
		t.Fatal(err)
	}
	// Three of the loop's passes since the push: it would have started
	// the job by now if it led.
	from := s.wt.passes.Load()
	deadline := time.Now().Add(10 * time.Second)
	for s.wt.passes.Load() < from+3 {
		if time.Now().After(deadline) {
			t.Fatal("the Worker's loop does not poll the shared queue")
		}
		time.Sleep(5 * time.Millisecond)
	}
	select {
	case <-putSeen:
		t.Fatal("a Worker that does not lead pushed to the upstream")
	default:
	}

	ctx, stop := context.WithCancel(context.Background())
	led := make(chan struct{})
	go func() { s.wt.Lead(ctx); close(led) }()
	await(t, "the leading Worker's push to the upstream", putSeen)
	for deadline := time.Now().Add(10 * time.Second); ; {
		n := 0
		q.Jobs(func(string, index.Job) error { n++; return nil })
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the job stayed queued after its push")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := s.up.HeadManifest(context.Background(), "team/app", "v1", oci.ServedManifests); err != nil {
		t.Fatalf("team/app:v1 upstream: %v", err)
	}
	stop()
	await(t, "Lead to return when its context ends", led)
}
