// Package e2e holds wharf's end-to-end tests: the real CNCF distribution
// registry in-process as the upstream, wharf's real layers (upstream client,
// cache, proxy) on an httptest server, and real clients in front of it
// (go-containerregistry's remote, and the docker CLI where an engine runs).
// A fault-injecting proxy sits between wharf and the registry only where a
// test needs what a real registry won't do.
package e2e
