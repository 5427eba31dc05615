package transport

import (
	"net/http"
	"reflect"
	"sort"
	"strings"
	"testing"
)

// FuzzChallenges: any WWW-Authenticate header (an upstream's, so hostile)
// parses without a panic into challenges whose scheme and parameter names
// are lower-case tokens; and what it parses, written back in the
// canonical form (quoted values), parses to the same.
func FuzzChallenges(f *testing.F) {
	for _, s := range []string{
		`Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"`,
		`Basic realm="Registry Realm"`,
		`Basic realm=x , Bearer realm="https://a/t", error="invalid_token"`,
		`Bearer realm="https://a`,
		`Bearer realm="a\"b\\c", scope=""`,
		`Negotiate abc==, Basic`,
		`=,,="x" Bearer`,
		"Bearer realm=\"\x00\xff\"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		got := parseHeader(v)
		for _, c := range got {
			if !isLowerToken(c.Scheme) {
				t.Fatalf("%q: scheme %q", v, c.Scheme)
			}
			for k := range c.Params {
				if !isLowerToken(k) {
					t.Fatalf("%q: parameter name %q", v, k)
				}
			}
		}
		back := format(got)
		if again := parseHeader(back); !reflect.DeepEqual(again, got) {
			t.Fatalf("%q parses to %v; written back as %q it parses to %v", v, got, back, again)
		}
	})
}

func parseHeader(v string) []Challenge {
	h := http.Header{}
	h.Add("WWW-Authenticate", v)
	return Challenges(h)
}

func isLowerToken(s string) bool {
	if s == "" || strings.ToLower(s) != s {
		return false
	}
	tok, rest := readToken(s)
	return tok == s && rest == ""
}

// format writes challenges as RFC 9110 does: scheme, then its parameters
// as name="value" with '"' and '\' escaped, sorted for a stable form.
func format(cs []Challenge) string {
	var parts []string
	for _, c := range cs {
		keys := make([]string, 0, len(c.Params))
		for k := range c.Params {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var ps []string
		for _, k := range keys {
			esc := strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(c.Params[k])
			ps = append(ps, k+`="`+esc+`"`)
		}
		parts = append(parts, strings.TrimSpace(c.Scheme+" "+strings.Join(ps, ", ")))
	}
	return strings.Join(parts, ", ")
}
