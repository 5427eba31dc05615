package cache

import (
	"os"
	"time"

	"github.com/wharf-mirror/wharf/cache/index"
)

// recoverUploads reconciles data/uploads with the index after a restart: a
// file without a record (a crash between creating it and recording it) is
// removed, a record without a file is forgotten. Sessions that survive
// carry on where their record says; expired ones go with the next sweep.
func (w *Writer) recoverUploads() error {
	known := map[string]bool{}
	var lost []string
	err := w.index.Uploads(func(id string, r index.UploadRecord) error {
		if _, err := os.Stat(w.uploadPath(id)); err != nil {
			lost = append(lost, id)
			return nil
		}
		known[id] = true
		w.slots.add(r.Client)
		return nil
	})
	if err != nil {
		return err
	}
	for _, id := range lost {
		w.index.DeleteUpload(id)
	}
	entries, err := os.ReadDir(w.uploadDir)
	if err != nil {
		return err
	}
	stray := 0
	for _, e := range entries {
		if !known[e.Name()] {
			os.RemoveAll(w.uploadPath(e.Name()))
			stray++
		}
	}
	if stray+len(lost) > 0 || len(known) > 0 {
		w.log.WithField("resumable", len(known)).WithField("removed", stray+len(lost)).
			Info("upload sessions after restart")
	}
	w.opts.Metrics.SetUploads(len(known))
	return nil
}

// sweepLoop removes expired sessions until Close.
func (w *Writer) sweepLoop() {
	defer w.done.Done()
	every := min(max(w.wopts.UploadExpiry/4, time.Second), 10*time.Minute)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		w.sweepUploads()
		select {
		case <-w.stop:
			return
		case <-t.C:
		}
	}
}

// sweepUploads ends every session that received nothing for UploadExpiry.
func (w *Writer) sweepUploads() int {
	cutoff := w.opts.Now().Add(-w.wopts.UploadExpiry)
	var old []string
	w.index.Uploads(func(id string, r index.UploadRecord) error {
		if r.Updated.Before(cutoff) {
			old = append(old, id)
		}
		return nil
	})
	n := 0
	for _, id := range old {
		unlock := w.lockUpload(id)
		// Check again under the lock: a chunk may just have arrived.
		if r, err := w.index.Upload(id); err == nil && r.Updated.Before(cutoff) {
			w.endUpload(id)
			n++
		}
		unlock()
	}
	if n > 0 {
		w.log.WithField("sessions", n).Info("expired abandoned uploads")
	}
	return n
}
