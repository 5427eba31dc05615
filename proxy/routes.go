package proxy

import (
	"net/http"

	"github.com/distribution/reference"
	"github.com/gorilla/mux"
	"github.com/opencontainers/go-digest"
)

// Route names, used in metrics and logs.
const (
	routeBase      = "base"
	routeManifest  = "manifest"
	routeBlob      = "blob"
	routeTags      = "tags"
	routeCatalog   = "catalog"
	routeHealth    = "healthz"
	routeMetrics   = "metrics"
	routeUnmatched = "unmatched"
	routeUpload    = "blob_upload"
	routeReferrers = "referrers"
	routeStatus    = "status" // GET /, the status page
)

// Patterns from the maintained grammars. They hold only non-capturing
// groups, which mux requires.
var (
	namePattern = reference.NameRegexp.String()
	refPattern  = reference.TagRegexp.String() + "|" + digest.DigestRegexp.String()
	digestPat   = digest.DigestRegexp.String()
)

// routes builds the one route table.
func (s *server) routes() *mux.Router {
	r := mux.NewRouter()
	// No path cleaning: "/v2/a/../b" must be refused as a bad name, not
	// redirected to another repository.
	r.SkipClean(true)
	reads := []string{http.MethodGet, http.MethodHead}

	r.Handle("/v2/", s.handle(s.base)).Methods(reads...).Name(routeBase)
	r.Handle("/v2/_catalog", s.handle(s.catalog)).Methods(reads...).Name(routeCatalog)
	r.Handle("/v2/{name:"+namePattern+"}/manifests/{reference:"+refPattern+"}", s.handle(s.manifest)).
		Methods(reads...).Name(routeManifest)
	r.Handle("/v2/{name:"+namePattern+"}/blobs/{digest:"+digestPat+"}", s.handle(s.blob)).
		Methods(reads...).Name(routeBlob)
	r.Handle("/v2/{name:"+namePattern+"}/tags/list", s.handle(s.tags)).Methods(reads...).Name(routeTags)
	s.pushRoutes(r)
	r.HandleFunc("/healthz", s.health).Methods(reads...).Name(routeHealth)
	if s.opts.MetricsHandler != nil {
		r.Handle("/metrics", s.opts.MetricsHandler).Methods(reads...).Name(routeMetrics)
	}
	if s.opts.StatusPage != nil {
		r.Handle("/", s.withViewer(s.opts.StatusPage)).Methods(reads...).Name(routeStatus)
	}
	r.Use(s.nameRoute, s.authorize)
	r.NotFoundHandler = s.handle(s.unmatched)
	r.MethodNotAllowedHandler = s.handle(s.methodNotAllowed)
	return r
}

// nameRoute records the matched route's name for the access log and metrics.
// (Router.Use runs only for matched routes; unmatched requests keep
// routeUnmatched.)
func (s *server) nameRoute(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if cur := mux.CurrentRoute(r); cur != nil {
			infoFrom(r.Context()).route = cur.GetName()
		}
		next.ServeHTTP(w, r)
	})
}

// pushRoutes adds the write path's routes for the capabilities the store
// has (see push.go). The read routes above keep their names, so metrics
// tell a manifest PUT from a GET by method.
func (s *server) pushRoutes(r *mux.Router) {
	name := "/v2/{name:" + namePattern + "}"
	if _, ok := s.opts.Store.(Uploader); ok {
		r.Handle(name+"/blobs/uploads/", s.handle(s.startUpload)).Methods(http.MethodPost).Name(routeUpload)
		session := name + "/blobs/uploads/{uuid:[0-9a-fA-F-]+}"
		r.Handle(session, s.handle(s.uploadStatus)).Methods(http.MethodGet).Name(routeUpload)
		r.Handle(session, s.handle(s.patchUpload)).Methods(http.MethodPatch).Name(routeUpload)
		r.Handle(session, s.handle(s.putUpload)).Methods(http.MethodPut).Name(routeUpload)
		r.Handle(session, s.handle(s.cancelUpload)).Methods(http.MethodDelete).Name(routeUpload)
	}
	if _, ok := s.opts.Store.(ManifestPusher); ok {
		r.Handle(name+"/manifests/{reference:"+refPattern+"}", s.handle(s.putManifest)).
			Methods(http.MethodPut).Name(routeManifest)
		r.Handle(name+"/manifests/{reference:"+refPattern+"}", s.handle(s.deleteManifest)).
			Methods(http.MethodDelete).Name(routeManifest)
		r.Handle(name+"/blobs/{digest:"+digestPat+"}", s.handle(s.deleteBlob)).
			Methods(http.MethodDelete).Name(routeBlob)
	}
	if _, ok := s.opts.Store.(ReferrerLister); ok {
		r.Handle(name+"/referrers/{digest:"+digestPat+"}", s.handle(s.referrers)).
			Methods(http.MethodGet).Name(routeReferrers)
	}
}
