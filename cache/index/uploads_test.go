package index

import (
	"errors"
	"reflect"
	"testing"
)

func uploads(t *testing.T, x *Index) map[string]UploadRecord {
	t.Helper()
	out := map[string]UploadRecord{}
	if err := x.Uploads(func(id string, r UploadRecord) error { out[id] = r; return nil }); err != nil {
		t.Fatalf("Uploads: %v", err)
	}
	return out
}

// TestUploadRecordsRoundTrip: every field a session resumes from comes
// back, through Upload, Uploads and a restart.
func TestUploadRecordsRoundTrip(t *testing.T) {
	dir := t.TempDir()
	x := mustOpen(t, dir)
	want := map[string]UploadRecord{
		"3f1c-fresh":   {Repo: "docker.io/site/app", Started: at(1), Updated: at(1), Client: "10.0.0.1"},
		"8a2b-chunked": {Repo: "ghcr.io/site/tool", Size: 5 << 20, Started: at(1), Updated: at(9), HashState: []byte("sha256 state\x00\xff")},
		"c9d0-legacy":  {Repo: "docker.io/site/app", Size: 1, Started: at(2), Updated: at(3)},
	}
	for id, r := range want {
		if err := x.PutUpload(id, r); err != nil {
			t.Fatal(err)
		}
	}
	for id, r := range want {
		if got, err := x.Upload(id); err != nil || !reflect.DeepEqual(got, r) {
			t.Errorf("Upload(%s): %+v, %v; want %+v", id, got, err, r)
		}
	}
	if got := uploads(t, x); !reflect.DeepEqual(got, want) {
		t.Errorf("Uploads: %+v; want %+v", got, want)
	}
	x = reopen(t, x, dir)
	if got := uploads(t, x); !reflect.DeepEqual(got, want) {
		t.Errorf("Uploads after reopen: %+v; want %+v", got, want)
	}
}

// TestPutUploadAdvances: a chunk appended records the new size over the
// old; Size is the truth about the session's file.
func TestPutUploadAdvances(t *testing.T) {
	x := mustOpen(t, t.TempDir())
	r := UploadRecord{Repo: "docker.io/a", Started: at(1), Updated: at(1)}
	for _, size := range []int64{0, 100, 4096} {
		r.Size, r.Updated = size, at(size)
		if err := x.PutUpload("s", r); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := x.Upload("s"); err != nil || got.Size != 4096 || !got.Updated.Equal(at(4096)) {
		t.Errorf("Upload: %+v, %v; want the last chunk's size and time", got, err)
	}
	if n := len(uploads(t, x)); n != 1 {
		t.Errorf("%d sessions, want 1", n)
	}
}

// TestDeleteUploadForgetsOnlyIt: a finished or cancelled session goes;
// one whose id it is a prefix of stays.
func TestDeleteUploadForgetsOnlyIt(t *testing.T) {
	dir := t.TempDir()
	x := mustOpen(t, dir)
	for _, id := range []string{"abc", "abcd", "other"} {
		if err := x.PutUpload(id, UploadRecord{Repo: "docker.io/a", Size: int64(len(id))}); err != nil {
			t.Fatal(err)
		}
	}
	if err := x.DeleteUpload("abc"); err != nil {
		t.Fatal(err)
	}
	if err := x.DeleteUpload("never-started"); err != nil {
		t.Errorf("DeleteUpload of an unknown session: %v", err)
	}
	x = reopen(t, x, dir)
	if _, err := x.Upload("abc"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Upload after DeleteUpload: %v, want ErrNotFound", err)
	}
	got := uploads(t, x)
	if len(got) != 2 || got["abcd"].Size != 4 || got["other"].Size != 5 {
		t.Errorf("sessions left: %+v; want abcd and other", got)
	}
}

func TestUploadsStopsAtFirstError(t *testing.T) {
	x := mustOpen(t, t.TempDir())
	for _, id := range []string{"a", "b"} {
		if err := x.PutUpload(id, UploadRecord{}); err != nil {
			t.Fatal(err)
		}
	}
	stop := errors.New("stop")
	calls := 0
	if err := x.Uploads(func(string, UploadRecord) error { calls++; return stop }); !errors.Is(err, stop) || calls != 1 {
		t.Errorf("Uploads returned %v after %d calls; want fn's error after 1", err, calls)
	}
}
