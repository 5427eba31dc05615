package proxy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"time"

	"github.com/sirupsen/logrus"
)

// reqInfo is what handlers tell the access log about a request. The
// middleware owns it; handlers fill it through infoFrom.
type reqInfo struct {
	id     string
	route  string
	repo   string
	ref    string
	source string // "cache", "upstream" or "" (no content)
	user   string // the authenticated user; "" anonymous (never the credentials)
	err    error
}

type infoKey struct{}

func infoFrom(ctx context.Context) *reqInfo {
	if i, ok := ctx.Value(infoKey{}).(*reqInfo); ok {
		return i
	}
	return &reqInfo{}
}

// RequestID returns the id the middleware gave the request in ctx.
func RequestID(ctx context.Context) string { return infoFrom(ctx).id }

func newRequestID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// middleware wraps the whole router (not Router.Use, which skips unmatched
// routes): request id, recover, metrics, and one access-log line.
func (s *server) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		info := &reqInfo{id: r.Header.Get("X-Request-Id"), route: routeUnmatched}
		if info.id == "" || len(info.id) > 64 {
			info.id = newRequestID()
		}
		w.Header().Set("X-Request-Id", info.id)
		rw := &responseWriter{ResponseWriter: w}
		s.limitBodyIdle(rw, r)
		r = r.WithContext(context.WithValue(r.Context(), infoKey{}, info))
		defer func() {
			p := recover()
			if p != nil && p != http.ErrAbortHandler {
				s.log.WithField("request_id", info.id).WithField("panic", p).Error("handler panicked")
				if !rw.wroteHeader {
					writeError(rw, r, errPanic)
				}
			}
			s.finish(rw, r, info, time.Since(start), p != nil)
			if p == http.ErrAbortHandler {
				panic(p) // net/http aborts the connection quietly
			}
		}()
		// Before routing, so that unmatched paths need a user too.
		if err := s.auth.admit(r, info); err != nil {
			if errors.As(err, new(*loginRefused)) {
				s.opts.Metrics.LimitHit("login")
			}
			info.err = err
			rw.Header().Set("Docker-Distribution-Api-Version", "registry/2.0")
			writeError(rw, r, err)
			return
		}
		next.ServeHTTP(rw, r)
	})
}

var errPanic = panicError{}

type panicError struct{}

func (panicError) Error() string { return "internal error (panic)" }

func (s *server) finish(rw *responseWriter, r *http.Request, info *reqInfo, d time.Duration, aborted bool) {
	status := rw.status
	if status == 0 {
		status = http.StatusOK
	}
	s.opts.Metrics.ObserveRequest(info.route, r.Method, status, d)
	if info.source != "" {
		s.opts.Metrics.Served(info.source, rw.bytes)
	}
	level, msg := logrus.InfoLevel, "request"
	clientLeft := errors.Is(info.err, context.Canceled) && r.Context().Err() != nil
	switch {
	case clientLeft:
		msg = "client left"
	case info.err != nil && (status >= 500 || aborted):
		level, msg = logrus.ErrorLevel, "request failed"
	case info.route == routeHealth || info.route == routeMetrics:
		level = logrus.DebugLevel // probes and scrapes every few seconds: not news
	}
	if !levelEnabled(s.log, level) {
		return // the fields cost more than the hit they describe
	}
	fields := logrus.Fields{
		"request_id": info.id,
		"method":     r.Method,
		"route":      info.route,
		"status":     status,
		"bytes":      rw.bytes,
		"duration":   d.Round(time.Microsecond).String(),
		"remote":     r.RemoteAddr,
	}
	if info.repo != "" {
		fields["repo"] = info.repo
	}
	if info.ref != "" {
		fields["ref"] = info.ref
	}
	if info.user != "" {
		fields["user"] = info.user
	}
	if info.source != "" {
		fields["cache"] = map[string]string{"cache": "hit", "upstream": "miss"}[info.source]
	}
	if aborted {
		fields["aborted"] = true
	}
	if info.err != nil && (level == logrus.ErrorLevel || !clientLeft) {
		// The error itself, not its text: formatters write its text, and
		// the status page's hook classifies it by type.
		fields[logrus.ErrorKey] = info.err
	}
	s.log.WithFields(fields).Log(level, msg)
}

// levelEnabled reports whether l would write an entry of level.
func levelEnabled(l logrus.FieldLogger, level logrus.Level) bool {
	switch l := l.(type) {
	case *logrus.Logger:
		return l.IsLevelEnabled(level)
	case *logrus.Entry:
		return l.Logger.IsLevelEnabled(level)
	}
	return true
}
