package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wharf-mirror/wharf/proxy"
	"github.com/wharf-mirror/wharf/upstream/upstreamtest"
)

// troubleCase is one failure an operator meets, as a row of README's
// troubleshooting table names it.
type troubleCase struct {
	row  string // the table's "failure" cell
	only string // the one client this failure concerns; "" for all
	ok   bool   // the client succeeds (a failure wharf absorbs)
	// setup puts a wharf into the failure (once for the case) and returns
	// the recorder in front of it and each client's call.
	setup func(t *testing.T) (*answerRecorder, func(client string) clientCall)
}

// TestTroubleshootingTable puts a real wharf into each failure of README's
// troubleshooting table and runs the real clients against it (the docker
// CLI with the host's engine, crane, containerd's ctr): each must print
// the phrases the table quotes for it, and wharf must have answered what
// the table says, so the table and the clients cannot drift apart. A
// client that is not installed (or has no daemon) is skipped with the
// reason; the others still run.
func TestTroubleshootingTable(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real clients; skipped with -short")
	}
	rows := readTroubleTable(t, troubleDoc)
	var clients []realClient
	for _, mk := range []func(*testing.T) (realClient, string){dockerClient, craneClient, ctrClient} {
		c, skip := mk(t)
		if skip != "" {
			t.Logf("skipping a client: %s", skip)
			continue
		}
		clients = append(clients, c)
	}
	cases := troubleCases(t)
	for _, tc := range cases {
		if _, ok := rows[tc.row]; !ok {
			t.Errorf("%s has no troubleshooting row %q", troubleDoc, tc.row)
		}
	}
	for row := range rows {
		if !slices.ContainsFunc(cases, func(tc troubleCase) bool { return tc.row == row }) {
			t.Errorf("%s: troubleshooting row %q is not tested (no case in TestTroubleshootingTable)", troubleDoc, row)
		}
	}
	if len(clients) == 0 {
		t.Skip("no client to run")
	}

	for _, tc := range cases {
		row, ok := rows[tc.row]
		if !ok {
			continue
		}
		t.Run(tc.row, func(t *testing.T) {
			rec, call := tc.setup(t)
			rec.take()
			var answers []string
			requests := 0
			for _, c := range clients {
				cell, spans := row.cells[c.name+" prints"], row.spans[c.name+" prints"]
				if tc.only != "" && tc.only != c.name {
					if cell != "—" {
						t.Errorf("%s: %q concerns %s alone, so its %s cell should be —, not %q", c.name, tc.row, tc.only, c.name, cell)
					}
					continue
				}
				t.Run(c.name, func(t *testing.T) {
					if !tc.ok && len(spans) == 0 {
						t.Errorf("the %q row's %q cell quotes nothing the client prints: %q", tc.row, c.name+" prints", cell)
					}
					out, err := c.run(t, call(c.name))
					a, n := rec.take()
					answers, requests = append(answers, a...), requests+n
					switch {
					case tc.ok && err != nil:
						t.Errorf("%s failed, and the row says it works: %v", c.name, err)
					case !tc.ok && err == nil:
						t.Errorf("%s succeeded, and the row says it fails", c.name)
					}
					for _, want := range spans {
						if !strings.Contains(out, want) {
							t.Errorf("%s printed no %q (README's %q row); it printed:\n%s", c.name, want, tc.row, out)
						}
					}
				})
			}
			if tc.ok && len(answers) > 0 {
				t.Errorf("wharf answered errors %q in a failure it absorbs", answers)
			}
			checkAnswers(t, row.cells["wharf answers"], row.spans["wharf answers"], answers, requests)
		})
	}
}

// checkAnswers checks the "wharf answers" cell against what wharf
// answered the row's clients: "—" means no client asked wharf; otherwise
// each quoted "STATUS CODE" (or "STATUS", for a HEAD, which has no body)
// must be among wharf's error answers.
func checkAnswers(t *testing.T, cell string, spans, answers []string, requests int) {
	t.Helper()
	if cell == "—" {
		if requests != 0 {
			t.Errorf("wharf answered %d requests (errors %q); the row says no client asks it", requests, answers)
		}
		return
	}
	for _, want := range spans {
		if !slices.Contains(answers, want) {
			t.Errorf("wharf's error answers were %q, not %q as the row says", answers, want)
		}
	}
}

// troubleCases are the failures of the table, in its order. Cases that
// share a kind of failure share one wharf (a lazily built fixture).
func troubleCases(t *testing.T) []troubleCase {
	reg := upstreamtest.NewRegistry(t)
	img := upstreamtest.RandomImage(t, 1, 4096, upstreamtest.DockerManifest)
	upstreamtest.Push(t, reg, "team/app:v1", img)
	mine := func() clientCall { // an image none of the registries holds, for pushes
		return clientCall{op: "push", img: upstreamtest.RandomImage(t, 1, 4096, upstreamtest.DockerManifest)}
	}
	pull := func(ref string) clientCall { return clientCall{op: "pull", ref: ref} }
	// warm pulls team/app:v1 through rec with go-containerregistry, as
	// some machine of the site did before the upstream failed. Its Accept
	// set is none of the clients': wharf serves what one kind of client
	// cached to the others.
	warm := func(rec *answerRecorder) {
		img, err := remote.Image(mustRef(t, rec.Host+"/team/app:v1"), client(t)...)
		if err == nil {
			err = validate.Image(img) // reads every blob
		}
		if err != nil {
			t.Fatalf("pull before the upstream failed: %v", err)
		}
	}

	// A read-only mirror of reg, as `wharf serve --upstream` runs by
	// default: the write path is there, closed to clients without
	// credentials, and there are no users.
	plain := sync.OnceValue(func() *answerRecorder {
		return newAnswerRecorder(t, startPusher(t, reg.URL, pushOpts{auth: &proxy.AuthOptions{}}).URL)
	})
	// A mirror whose upstream's port is closed, holding team/app:v1 from
	// before, with every tag due for revalidation; marked down.
	down := sync.OnceValue(func() *answerRecorder {
		front := newSwitchable(t, reg.URL)
		m := startMirror(t, front.URL, mirrorOpts{tagTTL: time.Millisecond, probeMin: time.Hour})
		rec := newAnswerRecorder(t, m.URL)
		warm(rec)
		front.refuse()
		waitFor(t, "the upstream to be marked down", func() bool {
			drain(get(t, m.URL+"/v2/team/app/manifests/probe").Body)
			return testutil.ToFloat64(m.Metrics.UpstreamUp.WithLabelValues(m.up.Name())) == 0
		})
		return rec
	})
	// A mirror whose upstream accepts connections and never answers, with
	// serve's defaults but for a 5 s header timeout (30 s in serve).
	hung := sync.OnceValue(func() *answerRecorder {
		faulty := upstreamtest.NewFaulty(t, reg.URL)
		m := startMirror(t, faulty.URL, mirrorOpts{tagTTL: time.Millisecond, retries: 4, probeMin: time.Hour})
		rec := newAnswerRecorder(t, m.URL)
		warm(rec)
		hang := newHangs()
		t.Cleanup(hang.release)
		faulty.SetFault(func(r *http.Request) upstreamtest.Fault {
			hang.hold(r)
			return upstreamtest.Fault{}
		})
		return rec
	})
	// A mirror with users and no anonymous access: alice may push where
	// the upstream has no tag; wrong passwords are not limited.
	users := sync.OnceValue(func() *answerRecorder {
		m := startMulti(t, multiOpts{def: namedUpstream{url: reg.URL}, auth: &proxy.AuthOptions{
			Passwords: newUsers(t, "alice", "alice-secret"), FailedLogins: -1,
		}})
		return newAnswerRecorder(t, m.URL)
	})

	return []troubleCase{
		{row: "upstream down, image cached", ok: true, setup: func(t *testing.T) (*answerRecorder, func(string) clientCall) {
			rec := down()
			return rec, func(string) clientCall { return pull(rec.Host + "/team/app:v1") }
		}},
		{row: "upstream down, image not cached", setup: func(t *testing.T) (*answerRecorder, func(string) clientCall) {
			rec := down()
			return rec, func(string) clientCall { return pull(rec.Host + "/team/app:v2") }
		}},
		{row: "upstream hangs, image cached", ok: true, setup: func(t *testing.T) (*answerRecorder, func(string) clientCall) {
			rec := hung()
			return rec, func(string) clientCall { return pull(rec.Host + "/team/app:v1") }
		}},
		{row: "upstream hangs, image not cached", setup: func(t *testing.T) (*answerRecorder, func(string) clientCall) {
			rec := hung()
			return rec, func(string) clientCall { return pull(rec.Host + "/team/app:v2") }
		}},
		{row: "upstream rate limit", setup: func(t *testing.T) (*answerRecorder, func(string) clientCall) {
			faulty := upstreamtest.NewFaulty(t, reg.URL)
			faulty.SetFault(func(r *http.Request) upstreamtest.Fault {
				if strings.Contains(r.URL.Path, "/manifests/") {
					return upstreamtest.Fault{Status: http.StatusTooManyRequests, RetryAfter: "3600"}
				}
				return upstreamtest.Fault{}
			})
			rec := newAnswerRecorder(t, startMirror(t, faulty.URL, mirrorOpts{}).URL)
			return rec, func(string) clientCall { return pull(rec.Host + "/team/app:v1") }
		}},
		{row: "upstream refuses wharf's credentials", setup: func(t *testing.T) (*answerRecorder, func(string) clientCall) {
			private := upstreamtest.NewRegistry(t, upstreamtest.WithBasicAuth("wharf", "upstream-secret"))
			upstreamtest.Push(t, private, "team/app:v1", img)
			rec := newAnswerRecorder(t, startMirror(t, private.URL, mirrorOpts{}).URL)
			return rec, func(string) clientCall { return pull(rec.Host + "/team/app:v1") }
		}},
		{row: "upstream sends a manifest that does not match its digest", setup: func(t *testing.T) (*answerRecorder, func(string) clientCall) {
			other, err := upstreamtest.RandomImage(t, 1, 1024, upstreamtest.DockerManifest).RawManifest()
			if err != nil {
				t.Fatal(err)
			}
			faulty := upstreamtest.NewFaulty(t, reg.URL)
			faulty.SetFault(func(r *http.Request) upstreamtest.Fault {
				if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/manifests/") {
					return upstreamtest.Fault{Body: other} // Docker-Content-Digest still names the real one
				}
				return upstreamtest.Fault{}
			})
			rec := newAnswerRecorder(t, startMirror(t, faulty.URL, mirrorOpts{}).URL)
			return rec, func(string) clientCall { return pull(rec.Host + "/team/app:v1") }
		}},
		{row: "no such image or tag", setup: func(t *testing.T) (*answerRecorder, func(string) clientCall) {
			rec := plain()
			return rec, func(string) clientCall { return pull(rec.Host + "/team/app:nope") }
		}},
		{row: "a registry's port in the image name", setup: func(t *testing.T) (*answerRecorder, func(string) clientCall) {
			rec := plain()
			return rec, func(string) clientCall { return pull(rec.Host + "/registry.local:5000/team/app:v1") }
		}},
		{row: "a registry wharf does not mirror, in the image name", setup: func(t *testing.T) (*answerRecorder, func(string) clientCall) {
			rec := plain()
			return rec, func(string) clientCall { return pull(rec.Host + "/quay.io/team/app:v1") }
		}},
		{row: "a registry wharf does not mirror, through containerd's hosts.toml", only: "ctr", setup: func(t *testing.T) (*answerRecorder, func(string) clientCall) {
			rec := plain()
			dir := t.TempDir()
			// The fallback server is a closed port: the pull must not
			// leave the machine.
			hosts := fmt.Sprintf("server = \"http://%s\"\n\n[host.\"http://%s\"]\n  capabilities = [\"pull\", \"resolve\"]\n", freeAddr(t), rec.Host)
			if err := os.MkdirAll(filepath.Join(dir, "quay.io"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "quay.io", "hosts.toml"), []byte(hosts), 0o644); err != nil {
				t.Fatal(err)
			}
			return rec, func(string) clientCall {
				return clientCall{op: "pull", ref: "quay.io/team/app:v1", hostsDir: dir}
			}
		}},
		{row: "push to a read-only mirror", setup: func(t *testing.T) (*answerRecorder, func(string) clientCall) {
			rec := plain()
			return rec, func(client string) clientCall {
				c := mine()
				c.ref = rec.Host + "/team/" + client + ":v1"
				return c
			}
		}},
		{row: "push over a mirrored tag", setup: func(t *testing.T) (*answerRecorder, func(string) clientCall) {
			rec := users()
			return rec, func(string) clientCall {
				c := mine()
				c.ref, c.user, c.pass = rec.Host+"/team/app:v1", "alice", "alice-secret"
				return c
			}
		}},
		{row: "wrong password", setup: func(t *testing.T) (*answerRecorder, func(string) clientCall) {
			rec := users()
			return rec, func(string) clientCall {
				c := pull(rec.Host + "/team/app:v1")
				c.user, c.pass = "alice", "wrong"
				return c
			}
		}},
		{row: "too many wrong passwords", setup: func(t *testing.T) (*answerRecorder, func(string) clientCall) {
			m := startMulti(t, multiOpts{def: namedUpstream{url: reg.URL}, auth: &proxy.AuthOptions{
				Passwords: newUsers(t, "alice", "alice-secret"), FailedLogins: 1, FailedLoginWindow: time.Hour,
			}})
			// One wrong password from this address uses up the window.
			req, err := http.NewRequest(http.MethodGet, m.URL+"/v2/", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.SetBasicAuth("alice", "guess")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			drain(resp.Body)
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("first wrong password: %d, want 401", resp.StatusCode)
			}
			rec := newAnswerRecorder(t, m.URL)
			return rec, func(string) clientCall {
				c := pull(rec.Host + "/team/app:v1")
				c.user, c.pass = "alice", "wrong"
				return c
			}
		}},
	}
}
