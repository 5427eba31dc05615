package statuspage

import (
	"regexp"
	"time"
	"unicode/utf8"
)

// ErrorGroup is one group of logged errors as the page shows it: every
// entry of one kind about one repository (or, naming none, one upstream)
// since start, counted, with the first and the last time.
type ErrorGroup struct {
	Kind     string // short: "upstream down", "digest mismatch", "client error", …
	Words    string // what happened, for an operator (the last entry's)
	Raw      string // the last entry's log message and error chain, secrets redacted
	Level    string // "error", "warning", or "client" (a client's bad request)
	Repo     string // as the store names it, "<upstream>/<path>"
	Upstream string
	// Of the last entry: where to look in the access log.
	Route     string
	RequestID string
	Count     int64
	First     time.Time
	Last      time.Time
}

// Secrets that error texts can carry: credentials in a URL's user info,
// Authorization header values, and token-like query parameters. Upstream
// clients already redact URLs; this is the page's own second line.
var (
	urlUserInfo = regexp.MustCompile(`([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]+@`)
	authValue   = regexp.MustCompile(`\b(Bearer|Basic) [A-Za-z0-9._~+/=-]{6,}`)
	secretParam = regexp.MustCompile(`(?i)\b((?:access_|refresh_|id_)?token|password|passwd|secret|client_secret)("?\s*[=:]\s*"?)[^&\s"',;]+`)
)

// Redact removes secrets from s and cuts it to at most max bytes (on a
// rune boundary), so one huge error cannot blow up the page. Whatever
// feeds the page text from logs passes it through here.
func Redact(s string, max int) string {
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
