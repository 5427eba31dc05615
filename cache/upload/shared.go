package upload

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/wharf-mirror/wharf/cache/index"
	"github.com/wharf-mirror/wharf/cache/records"
)

// Shared sessions live in the store the replicas of a cluster share, so
// that a push whose requests a load balancer spreads over the replicas
// completes, and what one replica acknowledged survives it:
//
//	records  uploads/<uuid>          state: repository, client, bytes that
//	                                 count, the running sha256's state, the
//	                                 chunks in order (sharedState)
//	chunks   <uuid>/<n>-<random>     one object per request body taken
//
// A request reads the state, streams its body into a new chunk object
// (named afresh, so that two replicas never write one object) while
// continuing the hash, then replaces the state on the condition that it
// is still the version read (records.IfMatch). Of two replicas appending
// at one offset, one replaces the state; the other deletes its chunk and
// answers as for a wrong offset. A chunk is acknowledged only once its
// object and the state naming it are both written.
//
// Ending a session deletes its state first, then its chunks: chunks
// without a state are leftovers anyone may sweep (a state is created
// before any chunk of its session). The expiry sweep ends a session by
// first replacing its state, on the version it found idle, with a
// tombstone (sharedsweep.go): a chunk acknowledged meanwhile changed the
// version, so the sweep loses and the session lives. A request that
// streams for long re-writes the state as it goes (sharedkeep.go), so
// that it never looks idle.
//
// A replica keeps a local copy of the chunks it took, while they are
// the whole session, in Dir: finishing a session pushed through one
// replica (a monolithic or single-PATCH push, or a sticky client) stages
// that file instead of reading the chunks back. Limits count the
// sessions each replica opened: they hold per replica.

// Shared names the stores shared sessions live in; both or neither.
type Shared struct {
	Records records.Store // the sessions' states, under uploads/
	Chunks  ChunkStore    // the bytes they received (cache/s3's Chunks)
}

// ChunkStore keeps the chunks of shared sessions, objects of any size
// written as a stream; cache/s3.Chunks is one.
type ChunkStore interface {
	// Put streams r (size bytes, or -1 when unknown) into a new chunk and
	// returns the bytes it took.
	Put(ctx context.Context, session, chunk string, r io.Reader, size int64) (int64, error)
	Open(ctx context.Context, session, chunk string) (io.ReadCloser, error)
	Delete(ctx context.Context, session, chunk string) error // a missing chunk is no error
	DeleteSession(ctx context.Context, session string) error // every chunk of session
	// Sessions calls fn with each session that has chunks.
	Sessions(ctx context.Context, fn func(session string) error) error
}

// sharedState is a shared session's record.
type sharedState struct {
	Repo      string     `json:"repo"`
	Client    string     `json:"client,omitempty"`
	Size      int64      `json:"size"` // the chunks' bytes together
	Started   time.Time  `json:"started"`
	Updated   time.Time  `json:"updated"`             // the last chunk acknowledged, for expiry
	Touched   time.Time  `json:"touched,omitzero"`    // a request streaming into it, for expiry (sharedkeep.go)
	HashState []byte     `json:"hashState,omitempty"` // sha256 of the Size bytes; empty: unknown
	Chunks    []chunkRef `json:"chunks,omitempty"`
	Ended     bool       `json:"ended,omitempty"` // a tombstone: the sweep is removing it
}

type chunkRef struct {
	Name string `json:"name"`
	Size int64  `json:"size"`
}

// maxChunks bounds a session's chunks, so that its state stays well
// under records.MaxSize (S3 caps a multipart upload at as many parts).
const maxChunks = 10000

// localCopy is what this replica holds of a shared session: its slot, if
// it opened the session, and a file of the chunks it took while they
// were the whole session.
type localCopy struct {
	client string // whose slot this replica holds
	held   bool
	chunks []string // the chunks in the file, in order; nil: no file
	size   int64
}

func (s *Sessions) shared() bool { return s.opts.Shared.Records != nil }

func stateKey(id string) string { return "uploads/" + id }

// load reads id's state if it belongs to repo and is not ended.
func (s *Sessions) load(ctx context.Context, repo, id string) (sharedState, string, error) {
	if u, err := uuid.Parse(id); err != nil || u.String() != id {
		return sharedState{}, "", fmt.Errorf("upload %q: %w", id, ErrUnknown)
	}
	st, ver, err := s.readState(ctx, id)
	if errors.Is(err, records.ErrNotFound) || (err == nil && (st.Repo != repo || st.Ended)) {
		return sharedState{}, "", fmt.Errorf("upload %s in %s: %w", id, repo, ErrUnknown)
	}
	return st, ver, err
}

func (s *Sessions) readState(ctx context.Context, id string) (sharedState, string, error) {
	rec, err := s.opts.Shared.Records.Get(ctx, stateKey(id))
	if err != nil {
		if !errors.Is(err, records.ErrNotFound) {
			s.opts.Metrics.StoreError("read")
			return sharedState{}, "", unavailable(id, err)
		}
		return sharedState{}, "", fmt.Errorf("upload %s: %w", id, err)
	}
	var st sharedState
	if err := json.Unmarshal(rec.Data, &st); err != nil {
		return sharedState{}, "", fmt.Errorf("upload %s: state unreadable: %w", id, err)
	}
	return st, rec.Version, nil
}

func (s *Sessions) putState(ctx context.Context, id string, st sharedState, cond records.Cond) (string, error) {
	data, err := json.Marshal(st)
	if err != nil {
		return "", fmt.Errorf("upload %s: %w", id, err)
	}
	return s.opts.Shared.Records.Put(ctx, stateKey(id), data, cond)
}

// startShared creates a session's state, if absent (a uuid collision
// must not take over another session).
func (s *Sessions) startShared(ctx context.Context, repo, client string) (Status, error) {
	if limit, err := s.takeShared(ctx, client); err != nil {
		s.opts.Metrics.LimitHit("uploads_" + limit)
		return Status{}, err
	}
	id := uuid.NewString()
	now := s.opts.Now()
	if _, err := s.putState(ctx, id, sharedState{Repo: repo, Client: client, Started: now, Updated: now}, records.IfAbsent()); err != nil {
		s.slots.give(client)
		s.opts.Metrics.StoreError("write")
		return Status{}, unavailable(id, err)
	}
	s.mu.Lock()
	s.mine[id] = &localCopy{client: client, held: true}
	s.mu.Unlock()
	s.opts.Metrics.UploadStarted()
	return Status{ID: id}, nil
}

// takeShared takes a slot; at a cap it first gives back the slots of
// this replica's sessions that ended on another replica.
func (s *Sessions) takeShared(ctx context.Context, client string) (string, error) {
	limit, err := s.slots.take(client)
	if err == nil {
		return "", nil
	}
	if s.releaseEnded(ctx) == 0 {
		return limit, err
	}
	return s.slots.take(client)
}

// copyOf returns this replica's entry for id, making one. The caller
// holds id's lock.
func (s *Sessions) copyOf(id string) *localCopy {
	s.mu.Lock()
	defer s.mu.Unlock()
	lc, ok := s.mine[id]
	if !ok {
		lc = &localCopy{}
		s.mine[id] = lc
	}
	return lc
}

// dropCopy removes the local file of id, keeping its slot. The caller
// holds id's lock.
func (s *Sessions) dropCopy(id string, lc *localCopy) {
	os.Remove(s.path(id))
	lc.chunks, lc.size = nil, 0
	s.mu.Lock()
	defer s.mu.Unlock()
	if !lc.held {
		delete(s.mine, id)
	}
}

// matches reports whether the local file holds exactly the chunks of st.
func (lc *localCopy) matches(st sharedState) bool {
	if len(lc.chunks) != len(st.Chunks) || lc.chunks == nil && len(st.Chunks) > 0 {
		return false
	}
	for i, c := range st.Chunks {
		if lc.chunks[i] != c.Name {
			return false
		}
	}
	return true
}

// endShared ends a session: its state first, then its chunks, its local
// copy and, if this replica opened it, its slot. A chunk a failing delete
// leaves is swept later (sweepShared). The work is not the client's to
// cancel.
func (s *Sessions) endShared(ctx context.Context, id string) error {
	ctx = context.WithoutCancel(ctx)
	if err := s.opts.Shared.Records.Delete(ctx, stateKey(id)); err != nil {
		s.opts.Metrics.StoreError("write")
		return unavailable(id, err)
	}
	if err := s.opts.Shared.Chunks.DeleteSession(ctx, id); err != nil {
		s.log.WithError(err).WithField("upload", id).Warn("remove upload chunks; the sweep retries")
	}
	s.release(id)
	return nil
}

// release forgets this replica's copy of an ended session and gives its
// slot back. The caller holds id's lock.
func (s *Sessions) release(id string) {
	os.Remove(s.path(id))
	s.mu.Lock()
	lc, ok := s.mine[id]
	delete(s.mine, id)
	s.mu.Unlock()
	if ok && lc.held {
		s.slots.give(lc.client)
		s.opts.Metrics.UploadEnded()
	}
}

// unavailable words a failure of the shared store, which the client may
// retry once the store answers again (503).
func unavailable(id string, err error) error {
	return fmt.Errorf("upload %s: %w: %w", id, ErrStoreUnavailable, err)
}

// chunkName names the n-th chunk of a session: the random part makes two
// replicas appending at one offset write two objects.
func chunkName(n int) string {
	b := make([]byte, 8)
	rand.Read(b)
	return fmt.Sprintf("%08d-%s", n, hex.EncodeToString(b))
}

// recoverShared starts a replica with no local copies: those of an
// earlier run name chunk lists it no longer knows. Sessions of a single
// node that this data directory held before are forgotten.
func (s *Sessions) recoverShared() error {
	entries, err := os.ReadDir(s.opts.Dir)
	if err != nil {
		return fmt.Errorf("uploads: %w", err)
	}
	for _, e := range entries {
		os.RemoveAll(s.path(e.Name()))
	}
	if s.opts.Records == nil {
		return nil
	}
	var local []string
	s.opts.Records.Uploads(func(id string, _ index.UploadRecord) error {
		local = append(local, id)
		return nil
	})
	for _, id := range local {
		s.opts.Records.DeleteUpload(id)
	}
	if len(local) > 0 {
		s.log.WithField("sessions", len(local)).Warn("forgot this node's upload sessions from before storage.s3: their clients start again")
	}
	return nil
}

// active is when a replica last vouched for the session: its last chunk,
// or a request still streaming into it.
func (st sharedState) active() time.Time {
	if st.Touched.After(st.Updated) {
		return st.Touched
	}
	return st.Updated
}

// sameAs reports whether st is o as written: a write whose answer was
// lost is recognised by it.
func (st sharedState) sameAs(o sharedState) bool {
	return st.Repo == o.Repo && st.Size == o.Size && st.Touched.Equal(o.Touched) && st.Updated.Equal(o.Updated) &&
		!st.Ended && !o.Ended && slices.Equal(st.Chunks, o.Chunks)
}

// names reports whether st lists the chunk called name.
func (st sharedState) names(name string) bool {
	return slices.ContainsFunc(st.Chunks, func(c chunkRef) bool { return c.Name == name })
}

// clone returns st with its own chunk list, to append to.
func (st sharedState) clone() sharedState {
	st.Chunks = slices.Clone(st.Chunks)
	return st
}

// sessionOf is the session a state key names, or "".
func sessionOf(key string) string {
	id, _ := strings.CutPrefix(key, "uploads/")
	if u, err := uuid.Parse(id); err != nil || u.String() != id {
		return ""
	}
	return id
}
