// Package metrics owns every Prometheus collector wharf exports.
//
// Collectors are fields of one Metrics value built on an injected
// prometheus.Registerer, never package globals, so tests can build a fresh
// registry and assert on it with prometheus/testutil. Every name starts with
// "wharf_". Labels are bounded sets (route, kind, status class, upstream
// name); never a repository, tag or digest, which would grow without bound.
//
// A nil *Metrics is valid and records nothing, so packages can be used in
// tests and tools without wiring a registry.
package metrics
