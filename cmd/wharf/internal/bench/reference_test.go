package bench

import (
	"testing"
)

func TestParseImage(t *testing.T) {
	const d = "sha256:" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	tests := []struct {
		in, host string
		want     image
		bad      bool
	}{
		{"alpine", "127.0.0.1:5000", image{repo: "alpine", tag: "latest"}, false},
		{"library/alpine:3.20", "127.0.0.1:5000", image{repo: "library/alpine", tag: "3.20", tagged: true}, false},
		{"127.0.0.1:5000/app/web:v1", "127.0.0.1:5000", image{repo: "app/web", tag: "v1", tagged: true}, false},
		// A mirror may route by path prefix: another host stays in the path.
		{"docker.io/library/alpine:3", "127.0.0.1:5000", image{repo: "docker.io/library/alpine", tag: "3", tagged: true}, false},
		{"app@" + d, "h:1", image{repo: "app", tag: "latest", digest: d}, false},
		{"app:v1@" + d, "h:1", image{repo: "app", tag: "v1", tagged: true, digest: d}, false},
		{"App:v1", "h:1", image{}, true},
		{"app:", "h:1", image{}, true},
		{"app@sha256:abc", "h:1", image{}, true},
	}
	for _, tt := range tests {
		got, err := parseImage(tt.in, tt.host)
		if (err != nil) != tt.bad {
			t.Errorf("%q: err %v, want error %v", tt.in, err, tt.bad)
			continue
		}
		if !tt.bad && got != tt.want {
			t.Errorf("%q: got %+v, want %+v", tt.in, got, tt.want)
		}
		if !tt.bad && tt.want.digest != "" && got.ref() != d {
			t.Errorf("%q: ref %q, want the digest", tt.in, got.ref())
		}
	}
}
