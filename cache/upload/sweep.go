package upload

import (
	"os"
	"time"

	"github.com/wharf-mirror/wharf/cache/index"
)

// recover reconciles the sessions' directory with the records after a
// restart: a file without a record (a crash between creating it and
// recording it) is removed, a record without a file is forgotten.
// Sessions that survive carry on where their record says, and hold their
// client's slots; expired ones go with the first sweep.
func (s *Sessions) recover() error {
	known := map[string]bool{}
	var lost []string
	err := s.opts.Records.Uploads(func(id string, r index.UploadRecord) error {
		if _, err := os.Stat(s.path(id)); err != nil {
			lost = append(lost, id)
			return nil
		}
		known[id] = true
		s.slots.add(r.Client)
		return nil
	})
	if err != nil {
		return err
	}
	for _, id := range lost {
		s.opts.Records.DeleteUpload(id)
	}
	entries, err := os.ReadDir(s.opts.Dir)
	if err != nil {
		return err
	}
	stray := 0
	for _, e := range entries {
		if !known[e.Name()] {
			os.RemoveAll(s.path(e.Name()))
			stray++
		}
	}
	if stray+len(lost) > 0 || len(known) > 0 {
		s.log.WithField("resumable", len(known)).WithField("removed", stray+len(lost)).
			Info("upload sessions after restart")
	}
	s.opts.Metrics.SetUploads(len(known))
	return nil
}

// sweepLoop removes expired sessions until Close.
func (s *Sessions) sweepLoop() {
	defer s.done.Done()
	every := min(max(s.opts.Expiry/4, time.Second), 10*time.Minute)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		s.sweep()
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
	}
}

// sweep ends every session that received nothing for Options.Expiry.
func (s *Sessions) sweep() int {
	if s.shared() {
		return s.sweepShared()
	}
	cutoff := s.opts.Now().Add(-s.opts.Expiry)
	var old []string
	s.opts.Records.Uploads(func(id string, r index.UploadRecord) error {
		if r.Updated.Before(cutoff) {
			old = append(old, id)
		}
		return nil
	})
	n := 0
	for _, id := range old {
		// A session with a request in progress is not idle, however long
		// the request streams, and the sweep does not wait for it.
		unlock, ok := s.tryLock(id)
		if !ok {
			continue
		}
		// Check again under the lock: a chunk may just have arrived.
		if r, err := s.opts.Records.Upload(id); err == nil && r.Updated.Before(cutoff) {
			s.end(id)
			n++
		}
		unlock()
	}
	if n > 0 {
		s.log.WithField("sessions", n).Info("expired abandoned uploads")
	}
	return n
}
