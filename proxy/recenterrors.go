package proxy

import (
	"fmt"
	"regexp"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/sirupsen/logrus"
)

// RecentError is one error-level log entry as the status page shows it.
type RecentError struct {
	Time      time.Time
	Message   string // the log message and its error, secrets redacted
	Route     string
	RequestID string
	Repo      string
	Upstream  string
}

// RecentErrors is a logrus hook that keeps the last few error-level entries
// for the status page, so a person sees what went wrong without reading
// logs. It keeps a fixed number of entries (constant memory however many
// errors are logged) and only the fields listed in RecentError: a log
// entry's other fields may carry things the page should not publish.
// Add it to the root logger with Logger.AddHook; every component logger
// derived from it then feeds it.
type RecentErrors struct {
	mu   sync.Mutex
	buf  []RecentError // ring; next is where the next entry goes
	next int
	full bool
}

// NewRecentErrors keeps the last n error entries (20 when n <= 0).
func NewRecentErrors(n int) *RecentErrors {
	if n <= 0 {
		n = 20
	}
	return &RecentErrors{buf: make([]RecentError, n)}
}

// Levels is part of logrus.Hook: errors and worse.
func (*RecentErrors) Levels() []logrus.Level {
	return []logrus.Level{logrus.PanicLevel, logrus.FatalLevel, logrus.ErrorLevel}
}

// Fire is part of logrus.Hook. It formats outside the lock; the lock only
// guards the slot write.
func (h *RecentErrors) Fire(e *logrus.Entry) error {
	msg := e.Message
	switch err := e.Data[logrus.ErrorKey].(type) {
	case error:
		msg += ": " + err.Error()
	case string:
		msg += ": " + err
	}
	if s, ok := e.Data["error"].(string); ok && e.Data[logrus.ErrorKey] == nil {
		msg += ": " + s
	}
	re := RecentError{
		Time:      e.Time,
		Message:   redact(msg, 500),
		Route:     field(e, "route"),
		RequestID: field(e, "request_id"),
		Repo:      field(e, "repo"),
		Upstream:  field(e, "upstream"),
	}
	if re.Time.IsZero() {
		re.Time = time.Now()
	}
	h.mu.Lock()
	h.buf[h.next] = re
	h.next = (h.next + 1) % len(h.buf)
	h.full = h.full || h.next == 0
	h.mu.Unlock()
	return nil
}

// Entries returns the kept entries, newest first.
func (h *RecentErrors) Entries() []RecentError {
	if h == nil {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	n := h.next
	if h.full {
		n = len(h.buf)
	}
	out := make([]RecentError, 0, n)
	for i := 1; i <= n; i++ {
		out = append(out, h.buf[(h.next-i+len(h.buf))%len(h.buf)])
	}
	return out
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
