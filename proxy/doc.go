// Package proxy is wharf's HTTP face: the Docker Registry v2 / OCI
// distribution read API, routed by one mux table built from the reference
// grammar, with one place (errors.go) that turns errors from below into v2
// error codes and statuses, and one middleware stack (request id, access log,
// metrics, recover) around the whole router.
//
// proxy never touches files or the index: it asks a Store (the cache) and
// streams what it gets. Cache hits (an *os.File from the disk store) go through
// http.ServeContent so the kernel's sendfile path, Range and conditional
// requests come for free; misses are followed as they fill.
//
// The status page (package statuspage) is mounted at / like the metrics
// handler: proxy puts the client's access in each request's context
// (statuspage.WithViewer), and its RecentErrors logrus hook groups the
// errors the page lists, classified by proxy's, cache's and upstream's
// sentinels (errorwords.go), which the page itself does not know.
package proxy
