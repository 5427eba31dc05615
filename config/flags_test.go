package config

import (
	"flag"
	"io"
	"reflect"
	"strings"
	"testing"
)

// TestRegisteredFlagsLoadAsServe: a command that registers serve's flags
// beside its own gets, from the same command line, file and environment,
// exactly the Config serve would; its own flags are its own.
func TestRegisteredFlagsLoadAsServe(t *testing.T) {
	t.Parallel()
	file := writeFile(t, "wharf.yaml", "upstreams:\n  - name: registry.local:5000\n    prefix: local\n    url: https://x.example\nstorage:\n  dir: /file\n")
	serveArgs := []string{"--config", file, "--offline", "--upstream", "https://registry.site:5000",
		"--upstreams", "registry.local:5000=https://registry.local:5000", "--upstreams", "quay.io=https://quay.io",
		"--upstream-official-library=false", "-listen", "127.0.0.1:9", "--tls-cert", "", "--log-level", "debug"}
	environ := env(map[string]string{"WHARF_DATA": "/env", "WHARF_TAG_TTL": "1m"})
	want, err := LoadWith(LoadOptions{Args: serveArgs, LookupEnv: environ, Output: io.Discard})
	if err != nil {
		t.Fatal(err)
	}

	fs := flag.NewFlagSet("wharf export", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	flags := RegisterFlags(fs)
	all := fs.Bool("all", false, "a command's own flag")
	if err := fs.Parse(append([]string{"--all"}, append(serveArgs, "image")...)); err != nil {
		t.Fatal(err)
	}
	got, err := flags.Load(environ, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("loaded\n%+v\nwant serve's\n%+v", got, want)
	}
	if !*all || fs.NArg() != 1 || fs.Arg(0) != "image" {
		t.Errorf("own flag %v, args %q", *all, fs.Args())
	}
	if got.Storage.Dir != "/env" || len(got.Upstreams) != 2 || got.Upstreams[0].Prefix != "local" || got.Upstreams[0].URL != "https://registry.local:5000" {
		t.Errorf("file, environment and flags not all applied: %+v", got)
	}

	var help strings.Builder
	flags.PrintDefaults(&help)
	if !strings.Contains(help.String(), "-all") || strings.Contains(help.String(), "-tls-cert") ||
		!strings.Contains(help.String(), "wharf serve --help") {
		t.Errorf("help lists the command's own flags and points at serve's:\n%s", help.String())
	}
}
