// Package inspect reads a whole store and reports on it: Verify re-hashes
// every stored item and, asked to repair, quarantines what no longer
// matches its digest (wharf verify); StatsOf says what the store holds,
// by repository (wharf du, and the status page's holdings).
//
// It judges; the cache acts. Inspect reads through the small interfaces
// it defines (VerifyStore, StatsStore), which *cache.Cache satisfies with
// the primitives of cache/inspectseam.go, and a repair removes through
// Cache.Remove, the cache's one locked removal path, so the store's
// totals, metrics and hot sets stay right. It takes no lock and knows
// nothing of the index below the cache, of HTTP or of configuration.
//
// wharf verify runs on a stopped store (Badger allows one process); the
// status page calls StatsOf on the serving store, at most once per its
// cache period, since it walks the whole index.
//
// Files:
//
//	verify.go  Verify, VerifyStore, the check and the quarantine
//	stats.go   StatsOf, StatsStore, Stats and RepoUsage
package inspect
