package transport

import (
	"net/http"
	"strings"
)

// Challenge is one parsed WWW-Authenticate challenge: a scheme in lower
// case ("bearer", "basic") and its auth-params, names in lower case.
type Challenge struct {
	Scheme string
	Params map[string]string
}

// Challenges parses every WWW-Authenticate header of h (RFC 9110 §11.6.1):
//
//	Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"
//
// Several challenges may share one header, separated by commas, which is
// why a bare token (not followed by "=") starts a new challenge. Malformed
// input yields what could be read, never an error: the caller only needs
// to find a Bearer or Basic challenge. (distribution and ggcr each keep
// such a parser internal, so wharf has its own.)
func Challenges(h http.Header) []Challenge {
	var out []Challenge
	for _, v := range h.Values("WWW-Authenticate") {
		out = append(out, parseChallenges(v)...)
	}
	return out
}

func parseChallenges(s string) []Challenge {
	var out []Challenge
	for {
		s = skipSeparators(s)
		if s == "" {
			return out
		}
		var tok string
		tok, s = readToken(s)
		if tok == "" { // not a token: skip one byte and resynchronise
			s = s[1:]
			continue
		}
		rest := strings.TrimLeft(s, " \t")
		if strings.HasPrefix(rest, "=") && len(out) > 0 {
			// An auth-param of the current challenge.
			var val string
			val, s = readValue(strings.TrimLeft(rest[1:], " \t"))
			out[len(out)-1].Params[strings.ToLower(tok)] = val
			continue
		}
		out = append(out, Challenge{Scheme: strings.ToLower(tok), Params: map[string]string{}})
	}
}

func skipSeparators(s string) string {
	return strings.TrimLeft(s, " \t,")
}

// isTokenChar reports the tchar set of RFC 9110 §5.6.2.
func isTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

func readToken(s string) (string, string) {
	i := 0
	for i < len(s) && isTokenChar(s[i]) {
		i++
	}
	return s[:i], s[i:]
}

// readValue reads a token or a quoted-string (with backslash escapes).
func readValue(s string) (string, string) {
	if !strings.HasPrefix(s, `"`) {
		return readToken(s)
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch c := s[i]; c {
		case '"':
			return b.String(), s[i+1:]
		case '\\':
			if i+1 < len(s) {
				i++
				b.WriteByte(s[i])
			}
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), "" // unterminated: take what there is
}
