// Package statuspage is wharf's HTML status page for people: hit ratio,
// what the store holds, each upstream's health and pull budget, and the
// errors logged since start, grouped.
//
// It keeps no counters of its own. Traffic comes from the metrics
// registry, read by the names the metrics package exports (so the page
// and /metrics never disagree); holdings from the store's Stats (what
// wharf du prints, inspect.Stats), computed at most once per 10 s; errors
// from proxy's RecentErrors hook, which knows what each error means;
// breaker state from the upstream clients.
//
// New returns an http.Handler; proxy mounts it at / like the metrics
// handler and puts the client's Viewer in the request's context, so the
// page names only repositories its viewer may read. The package imports
// neither proxy nor the router: it depends on the sources it is given.
package statuspage
