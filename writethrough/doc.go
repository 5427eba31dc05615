// Package writethrough passes what clients push to wharf on to the
// upstream the pushed names belong to: first every blob a manifest
// references (skipping what the upstream has, mounting what it holds in
// another repository), then child manifests, then the manifest under its
// tag. Deletes made here follow the same way. It is the cache's
// push.WriteThrough; cmd/wharf serve builds it over the cache's durable
// queue (cache.Cache.Queue) and hands it to the write path (package push).
//
// Pending jobs live in the index (its q/ keys), so a restart loses none;
// a failed attempt is retried with exponential backoff, and every attempt
// is counted in metrics and logged. A job that can never succeed (its
// content deleted since, a delete the upstream refuses) is dropped.
//
// Each repository's jobs run in the order they were queued, one after the
// other: a job waits while an earlier one of its repository is failing,
// so a delete never overtakes the push it undoes, nor a push the delete
// before it. Repositories are independent: the Worker runs up to
// Options.Parallel repositories' lines at once, and an attempt locks only
// its repository, so one slow upstream push holds up no other
// repository's.
//
// In synchronous mode (Options.Sync) the request that queued a job runs
// its repository's line up to it and returns the upstream's failure to
// the client; the Worker then only picks up what a restart left.
//
// The Worker's goroutines (the loop and one per running line) belong to
// it: Close stops them and waits. A push in flight is abandoned and stays
// queued.
package writethrough
