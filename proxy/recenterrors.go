package proxy

import (
	"fmt"
	"regexp"
	"sort"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/sirupsen/logrus"
)

// RecentError is one group of logged errors as the status page shows it:
// every entry of one kind about one repository (or, naming none, one
// upstream) since start, counted, with the first and the last time.
type RecentError struct {
	Kind     string // short: "upstream down", "digest mismatch", "client error", …
	Words    string // what happened, for an operator (the last entry's)
	Raw      string // the last entry's log message and error chain, secrets redacted
	Level    string // "error", "warning", or "client" (a client's bad request)
	Repo     string
	Upstream string
	// Of the last entry: where to look in the access log.
	Route     string
	RequestID string
	Count     int64
	First     time.Time
	Last      time.Time
}

// RecentErrors is a logrus hook that groups error and warning entries for
// the status page, so a person sees what goes wrong, how often and since
// when, without reading logs: one group per kind of error and repository
// (upstream when no repository is named). It keeps at most a fixed number
// of groups, dropping the one seen longest ago for a new one, so memory is
// constant however many errors are logged; and it keeps only the fields
// listed in RecentError: a log entry's other fields may carry things the
// page should not publish. Add it to the root logger with Logger.AddHook;
// every component logger derived from it then feeds it.
type RecentErrors struct {
	max int

	mu     sync.Mutex
	groups map[groupKey]*RecentError
}

type groupKey struct{ kind, where, words string }

// NewRecentErrors keeps at most n groups (20 when n <= 0).
func NewRecentErrors(n int) *RecentErrors {
	if n <= 0 {
		n = 20
	}
	return &RecentErrors{max: n, groups: make(map[groupKey]*RecentError, n)}
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
	re := RecentError{
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
	re.Raw = redact(rawMessage(e), 500)
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
		re.Words = redact(e.Message, 200)
		if err != nil {
			re.Words = redact(e.Message+": "+err.Error(), 200)
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
	if len(h.groups) >= h.max {
		h.dropOldestLocked()
	}
	h.groups[key] = &re
	return nil
}

// dropOldestLocked forgets the group seen longest ago. A scan: there are
// few groups, and a new group is rare next to a repeated one.
func (h *RecentErrors) dropOldestLocked() {
	var oldest groupKey
	var at time.Time
	for k, g := range h.groups {
		if at.IsZero() || g.Last.Before(at) {
			oldest, at = k, g.Last
		}
	}
	delete(h.groups, oldest)
}

// limit is the most groups kept, 0 for a nil h.
func (h *RecentErrors) limit() int {
	if h == nil {
		return 0
	}
	return h.max
}

// Entries returns the groups, the one seen last first.
func (h *RecentErrors) Entries() []RecentError {
	if h == nil {
		return nil
	}
	h.mu.Lock()
	out := make([]RecentError, 0, len(h.groups))
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
	return redact(fmt.Sprint(v), 200)
}

// Secrets that error texts can carry: credentials in a URL's user info,
// Authorization header values, and token-like query parameters. Upstream
// clients already redact URLs; this is the page's own second line.
var (
	urlUserInfo = regexp.MustCompile(`([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]+@`)
	authValue   = regexp.MustCompile(`\b(Bearer|Basic) [A-Za-z0-9._~+/=-]{6,}`)
	secretParam = regexp.MustCompile(`(?i)\b((?:access_|refresh_|id_)?token|password|passwd|secret|client_secret)("?\s*[=:]\s*"?)[^&\s"',;]+`)
)

// redact removes secrets from s and cuts it to at most max bytes (on a
// rune boundary), so one huge error cannot blow up the page.
func redact(s string, max int) string {
	s = urlUserInfo.ReplaceAllString(s, "${1}REDACTED@")
	s = authValue.ReplaceAllString(s, "${1} REDACTED")
	s = secretParam.ReplaceAllString(s, "${1}${2}REDACTED")
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}
