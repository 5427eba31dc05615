package index

import (
	"errors"
	"reflect"
	"testing"

	"github.com/opencontainers/go-digest"
)

type queued struct {
	key string
	job Job
}

func jobs(t *testing.T, q Queue) []queued {
	t.Helper()
	var out []queued
	if err := q.Jobs(func(key string, j Job) error { out = append(out, queued{key, j}); return nil }); err != nil {
		t.Fatalf("Jobs: %v", err)
	}
	return out
}

func keysOf(qs []queued) []string {
	out := []string{}
	for _, q := range qs {
		out = append(out, q.key)
	}
	return out
}

// enqueue puts jobs in the order given, each enqueued a second after the
// one before.
func enqueue(t *testing.T, q Queue, jobs ...Job) []string {
	t.Helper()
	var keys []string
	for i, j := range jobs {
		j.Enqueued = at(int64(i))
		key := JobKey(j.Repo, j.Tag, j.Digest)
		if j.Op != "" {
			key = DeleteJobKey(j.Repo, j.Op, j.Tag, j.Digest)
		}
		if err := q.PutJob(key, j); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, key)
	}
	return keys
}

// TestJobsOldestFirst: the queue is worked in enqueue order, so within a
// repository a tag pushed, moved and deleted reaches the upstream in that
// order, whatever order the keys sort in.
func TestJobsOldestFirst(t *testing.T) {
	x := mustOpen(t, t.TempDir())
	q := x.Queue()
	m1, m2 := digest.FromString("m1"), digest.FromString("m2")
	// Keys sort z… before a… nowhere near enqueue order.
	keys := enqueue(t, q,
		Job{Repo: "docker.io/z", Tag: "v1", Digest: m1},
		Job{Repo: "docker.io/a", Tag: "v1", Digest: m2},
		Job{Repo: "docker.io/z", Tag: "v1", Digest: m2},
		Job{Repo: "docker.io/a", Op: OpDeleteTag, Tag: "v1"},
		Job{Repo: "docker.io/m", Digest: m1},
		Job{Repo: "docker.io/a", Tag: "v1", Digest: m1},
	)
	if got := keysOf(jobs(t, q)); !reflect.DeepEqual(got, keys) {
		t.Errorf("Jobs in order %q; want enqueue order %q", got, keys)
	}
}

// TestQueueSurvivesReopen: the queue is in the index so a restart loses
// no pushed manifest that has not reached the upstream yet, nor how often
// it was tried.
func TestQueueSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	x := mustOpen(t, dir)
	d := digest.FromString("m")
	keys := enqueue(t, x.Queue(),
		Job{Repo: "docker.io/b", Tag: "v1", Digest: d},
		Job{Repo: "docker.io/a", Op: OpDeleteManifest, Digest: d},
		Job{Repo: "docker.io/a", Op: OpDeleteBlob, Digest: digest.FromString("layer")},
	)
	retried := Job{Repo: "docker.io/b", Tag: "v1", Digest: d, Enqueued: at(0), Attempts: 3, NextTry: at(100), LastError: "upstream: 503"}
	if err := x.Queue().PutJob(keys[0], retried); err != nil {
		t.Fatal(err)
	}
	before := jobs(t, x.Queue())

	x = reopen(t, x, dir)
	after := jobs(t, x.Queue())
	if !reflect.DeepEqual(after, before) {
		t.Errorf("queue after reopen:\n%+v\nwant\n%+v", after, before)
	}
	if len(after) != 3 || after[0].job.Attempts != 3 || after[0].job.LastError == "" {
		t.Errorf("the retried job came back as %+v", after[0].job)
	}
}

// TestPutJobUpdatesInPlace: a job's attempt recorded is one job still, at
// its place in the queue; queued again, it is one job at the back.
func TestPutJobUpdatesInPlace(t *testing.T) {
	x := mustOpen(t, t.TempDir())
	q := x.Queue()
	keys := enqueue(t, q,
		Job{Repo: "docker.io/a", Tag: "v1", Digest: digest.FromString("1")},
		Job{Repo: "docker.io/a", Tag: "v2", Digest: digest.FromString("2")},
	)
	j, err := q.Job(keys[0])
	if err != nil {
		t.Fatal(err)
	}
	j.Attempts++
	j.LastError = "timeout"
	if err := q.PutJob(keys[0], j); err != nil {
		t.Fatal(err)
	}
	got := jobs(t, q)
	if !reflect.DeepEqual(keysOf(got), keys) || got[0].job != j {
		t.Errorf("queue after an update: %+v; want %q with the first updated to %+v", got, keys, j)
	}
	// Queued again (a later Enqueued), it goes to the back: it must
	// follow what was queued in between.
	j.Enqueued = at(100)
	if err := q.PutJob(keys[0], j); err != nil {
		t.Fatal(err)
	}
	if got := keysOf(jobs(t, q)); !reflect.DeepEqual(got, []string{keys[1], keys[0]}) {
		t.Errorf("queue after queueing the first again: %q; want it last", got)
	}
}

// TestDeleteJobRemovesOnlyIt: a finished job goes, and nothing else,
// least of all a delete job whose key extends the push job's key.
func TestDeleteJobRemovesOnlyIt(t *testing.T) {
	d := digest.FromString("m")
	all := []Job{
		{Repo: "docker.io/a", Tag: "v1", Digest: d},
		{Repo: "docker.io/a", Op: OpDeleteTag, Tag: "v1", Digest: d},
		{Repo: "docker.io/a", Op: OpDeleteManifest, Tag: "v1", Digest: d},
		{Repo: "docker.io/a/b", Tag: "v1", Digest: d},
		{Repo: "docker.io/a", Tag: "v10", Digest: d},
	}
	for i := range all {
		t.Run(all[i].Op+" "+all[i].Repo+":"+all[i].Tag, func(t *testing.T) {
			x := mustOpen(t, t.TempDir())
			q := x.Queue()
			keys := enqueue(t, q, all...)
			if err := q.DeleteJob(keys[i]); err != nil {
				t.Fatal(err)
			}
			if _, err := q.Job(keys[i]); !errors.Is(err, ErrNotFound) {
				t.Errorf("Job after DeleteJob: %v, want ErrNotFound", err)
			}
			want := append(append([]string{}, keys[:i]...), keys[i+1:]...)
			if got := keysOf(jobs(t, q)); !reflect.DeepEqual(got, want) {
				t.Errorf("queue: %q; want %q", got, want)
			}
		})
	}
}

func TestJobsStopsAtFirstError(t *testing.T) {
	x := mustOpen(t, t.TempDir())
	q := x.Queue()
	enqueue(t, q, Job{Repo: "a", Tag: "1"}, Job{Repo: "a", Tag: "2"})
	stop := errors.New("stop")
	calls := 0
	err := q.Jobs(func(string, Job) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("Jobs returned %v after %d calls; want fn's error after 1", err, calls)
	}
}

// TestJobKeys: one key per repository, tag and digest (a retried push is
// queued once); a delete's key differs from a push's of the same target,
// and by operation.
func TestJobKeys(t *testing.T) {
	d, e := digest.FromString("d"), digest.FromString("e")
	keys := map[string]string{
		"push":                   JobKey("docker.io/a", "v1", d),
		"push of another tag":    JobKey("docker.io/a", "v2", d),
		"push of another digest": JobKey("docker.io/a", "v1", e),
		"push elsewhere":         JobKey("docker.io/b", "v1", d),
		"push by digest":         JobKey("docker.io/a", "", d),
		"delete tag":             DeleteJobKey("docker.io/a", OpDeleteTag, "v1", d),
		"delete manifest":        DeleteJobKey("docker.io/a", OpDeleteManifest, "v1", d),
		"delete blob":            DeleteJobKey("docker.io/a", OpDeleteBlob, "v1", d),
	}
	seen := map[string]string{}
	for name, k := range keys {
		if other, dup := seen[k]; dup {
			t.Errorf("%s and %s share the key %q", name, other, k)
		}
		seen[k] = name
	}
	if JobKey("docker.io/a", "v1", d) != keys["push"] {
		t.Error("JobKey is not a function of its arguments")
	}
}
