package proxy

import (
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/wharf-mirror/wharf/statuspage"
)

// RecentErrors is a logrus hook that groups error and warning entries for
// the status page (statuspage.Errors), so a person sees what goes wrong, how often and since
// when, without reading logs: one group per kind of error and repository
// (upstream when no repository is named). It keeps at most a fixed number
// of groups, dropping the one seen longest ago for a new one (a client's
// bad request goes first, and a new one replaces only another), so memory is
// constant however many errors are logged; and it keeps only the fields
// listed in statuspage.ErrorGroup: a log entry's other fields may carry things the
// page should not publish. Add it to the root logger with Logger.AddHook;
// every component logger derived from it then feeds it.
type RecentErrors struct {
	max int

	mu     sync.Mutex
	groups map[groupKey]*statuspage.ErrorGroup
}

type groupKey struct{ kind, where, words string }

// NewRecentErrors keeps at most n groups (20 when n <= 0).
func NewRecentErrors(n int) *RecentErrors {
	if n <= 0 {
		n = 20
	}
	return &RecentErrors{max: n, groups: make(map[groupKey]*statuspage.ErrorGroup, n)}
}

// Levels is part of logrus.Hook: errors and warnings, and info entries,
// of which Fire keeps only a client's or an upstream's failure that
// explain knows (a 4xx the access log writes at info level).
func (*RecentErrors) Levels() []logrus.Level {
	return []logrus.Level{logrus.PanicLevel, logrus.FatalLevel, logrus.ErrorLevel, logrus.WarnLevel, logrus.InfoLevel}
}

// Fire is part of logrus.Hook. It classifies and formats outside the
// lock; the lock only guards the group update.
func (h *RecentErrors) Fire(e *logrus.Entry) error {
	err, _ := e.Data[logrus.ErrorKey].(error)
	if e.Level > logrus.WarnLevel && err == nil {
		return nil // the common case, an access line without error: nothing to do
	}
	re := statuspage.ErrorGroup{
		Level:     "error",
		Route:     field(e, "route"),
		RequestID: field(e, "request_id"),
		Repo:      field(e, "repo"),
		Upstream:  field(e, "upstream"),
		Count:     1,
	}
	ex, known := explain(err, re.Upstream)
	switch {
	case e.Level > logrus.WarnLevel && !(known && (ex.client || ex.fromInfo)):
		return nil
	case ex.client:
		re.Level = "client"
	case e.Level == logrus.WarnLevel:
		re.Level = "warning"
	}
	re.Raw = statuspage.Redact(rawMessage(e), 500)
	key := groupKey{kind: ex.kind, where: re.Repo}
	if re.Repo == "" {
		key.where = "\x00" + re.Upstream
	}
	if known {
		re.Kind, re.Words = ex.kind, ex.words
	} else {
		// Unknown: the log message, written for people, and the start of
		// its error. Grouped by those words, since kind says nothing.
		re.Kind = re.Level
		re.Words = statuspage.Redact(e.Message, 200)
		if err != nil {
			re.Words = statuspage.Redact(e.Message+": "+err.Error(), 200)
		}
		key.kind, key.words = re.Kind, re.Words
	}
	at := e.Time
	if at.IsZero() {
		at = time.Now()
	}
	re.First, re.Last = at, at
	h.mu.Lock()
	defer h.mu.Unlock()
	if g, ok := h.groups[key]; ok {
		first, count := g.First, g.Count+1
		*g = re
		g.First, g.Count = first, count
		return nil
	}
	if len(h.groups) >= h.max && !h.dropOldestLocked(re.Level == "client") {
		return nil
	}
	h.groups[key] = &re
	return nil
}

// dropOldestLocked forgets the client group seen longest ago, else (for
// a group that is not a client's) the oldest of all; false when nothing
// may go. A client's bad requests (any anonymous one's, each repository
// its own group) so never push wharf's own errors off the page. A scan:
// there are few groups, and a new group is rare next to a repeated one.
func (h *RecentErrors) dropOldestLocked(client bool) bool {
	var oldest, oldestClient *groupKey
	var at, atClient time.Time
	for k, g := range h.groups {
		if at.IsZero() || g.Last.Before(at) {
			oldest, at = &k, g.Last
		}
		if g.Level == "client" && (atClient.IsZero() || g.Last.Before(atClient)) {
			oldestClient, atClient = &k, g.Last
		}
	}
	switch {
	case oldestClient != nil:
		delete(h.groups, *oldestClient)
	case !client && oldest != nil:
		delete(h.groups, *oldest)
	default:
		return false
	}
	return true
}

// Limit is the most groups kept, 0 for a nil h.
func (h *RecentErrors) Limit() int {
	if h == nil {
		return 0
	}
	return h.max
}

// Entries returns the groups, the one seen last first.
func (h *RecentErrors) Entries() []statuspage.ErrorGroup {
	if h == nil {
		return nil
	}
	h.mu.Lock()
	out := make([]statuspage.ErrorGroup, 0, len(h.groups))
	for _, g := range h.groups {
		out = append(out, *g)
	}
	h.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Last.After(out[j].Last) })
	return out
}

// rawMessage is the entry's message and its error as the log writes them.
func rawMessage(e *logrus.Entry) string {
	msg := e.Message
	switch err := e.Data[logrus.ErrorKey].(type) {
	case error:
		msg += ": " + err.Error()
	case string:
		msg += ": " + err
	}
	return msg
}

func field(e *logrus.Entry, key string) string {
	v, ok := e.Data[key]
	if !ok || v == nil {
		return ""
	}
	return statuspage.Redact(fmt.Sprint(v), 200)
}
