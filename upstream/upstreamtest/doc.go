// Package upstreamtest gives tests real registries to talk to, in-process
// and on 127.0.0.1, and a proxy that injects the faults real registries
// won't produce on demand. It is for tests of upstream/ and of the
// packages built on it (the cache, the proxy).
//
//   - NewRegistry runs the CNCF distribution registry v3 (the reference
//     implementation, the one Docker Hub's behaviour descends from) with
//     in-memory storage, anonymous, with htpasswd Basic auth
//     (WithBasicAuth), or with distribution's real JWT token auth and a
//     small token issuer written here (WithTokenAuth).
//   - RandomImage, RandomIndex, Push and PushIndex fill it with
//     go-containerregistry.
//   - NewFaulty puts a reverse proxy in front of any registry URL that
//     delays, stalls, corrupts, truncates, paces, resets, redirects to a
//     "CDN", or answers with a status of the test's choosing, per request,
//     and counts what it saw.
//
// Everything is closed by t.Cleanup. Distribution starts one goroutine per
// registry it never stops (its notification broadcaster); TestMain should
// pass LeakOptions to goleak.
package upstreamtest
