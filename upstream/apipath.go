package upstream

import (
	"net/url"
	"strings"
)

// TrimAPIPath returns raw without a trailing "/v2" or "/v2/", and whether
// it had one. A registry's base URL is where /v2/ goes after (a path
// prefix is kept), so a URL copied from a browser or a curl line,
// "https://registry.site/v2/", would make every request /v2/v2/…, which
// clients report as "manifest unknown". Callers warn when it was trimmed.
// A URL that does not parse is returned unchanged, for validation to
// refuse.
func TrimAPIPath(raw string) (string, bool) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return raw, false
	}
	p := strings.TrimRight(u.Path, "/")
	if !strings.HasSuffix(p, "/v2") {
		return raw, false
	}
	u.Path, u.RawPath = strings.TrimSuffix(p, "/v2"), ""
	return u.String(), true
}
