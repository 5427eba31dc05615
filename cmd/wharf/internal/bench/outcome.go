package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sync"
)

// Outcome classes of one request in a storm. The first three are clean:
// what a registry may answer when its upstream misbehaves. Every other
// class is a defect of the server under test.
const (
	ClassOK    = "ok"       // 2xx, and the bytes verified
	ClassV2    = "v2_error" // non-2xx (not 500) with a v2 error body of known codes
	ClassAbort = "abort"    // 2xx headers, then the body cut before its end

	ClassWrongBytes  = "wrong_bytes"  // 2xx, body complete, bytes not the digest's
	ClassNotV2       = "not_v2"       // non-2xx without a v2 error body, or with an unknown code
	Class500         = "http_500"     // 500: the server failed, whatever its body says
	ClassHang        = "hang"         // no answer, or no end of body, within HangAfter
	ClassNetwork     = "network"      // no response at all: refused, reset before the headers
	ClassLost        = "lost"         // 404 for pushed content not deleted
	ClassResurrected = "resurrected"  // 200 for a deleted manifest
	ClassBadManifest = "bad_manifest" // a verified manifest that cannot be followed
)

// Clean tells whether an outcome class is acceptable behaviour.
func Clean(class string) bool {
	return class == ClassOK || class == ClassV2 || class == ClassAbort
}

// v2Codes are the error codes of the distribution spec and of the
// reference implementation (UNAVAILABLE, TOOMANYREQUESTS, UNKNOWN).
var v2Codes = map[string]bool{
	"BLOB_UNKNOWN": true, "BLOB_UPLOAD_INVALID": true, "BLOB_UPLOAD_UNKNOWN": true,
	"DIGEST_INVALID": true, "MANIFEST_BLOB_UNKNOWN": true, "MANIFEST_INVALID": true,
	"MANIFEST_UNKNOWN": true, "MANIFEST_UNVERIFIED": true, "NAME_INVALID": true,
	"NAME_UNKNOWN": true, "SIZE_INVALID": true, "TAG_INVALID": true, "UNAUTHORIZED": true,
	"DENIED": true, "UNSUPPORTED": true, "TOOMANYREQUESTS": true, "UNAVAILABLE": true,
	"UNKNOWN": true, "RANGE_INVALID": true, "PAGINATION_NUMBER_INVALID": true,
}

// v2Code returns the code of a v2 error body, or "" when body is not
// {"errors":[{"code":…},…]} with known codes only.
func v2Code(body string) string {
	var env struct {
		Errors []struct {
			Code string `json:"code"`
		} `json:"errors"`
	}
	if json.Unmarshal([]byte(body), &env) != nil || len(env.Errors) == 0 {
		return ""
	}
	for _, e := range env.Errors {
		if !v2Codes[e.Code] {
			return ""
		}
	}
	return env.Errors[0].Code
}

// classify names the outcome of one request that ended with err. detail
// is what the class is counted under in the codes table ("502 UNAVAILABLE",
// "blob"); count is false for requests cut short by the caller (a
// sibling's failure, the end of the run), which are no outcome at all.
func classify(ctx context.Context, kind string, err error) (class, detail string, count bool) {
	var se *StatusError
	switch {
	case err == nil:
		return ClassOK, "", true
	case errors.Is(err, ErrHang):
		return ClassHang, kind, true
	case ctx.Err() != nil:
		return "", "", false
	case errors.Is(err, ErrLost), errors.As(err, &se) && se.Status == http.StatusNotFound && mustExist(ctx):
		return ClassLost, kind, true
	case errors.Is(err, ErrResurrected):
		return ClassResurrected, kind, true
	case errors.As(err, &se) && se.Status == http.StatusInternalServerError:
		return Class500, kind, true
	case errors.As(err, &se):
		code := v2Code(se.Body)
		if code == "" || se.Status/100 == 2 {
			return ClassNotV2, fmt.Sprintf("%s %d", kind, se.Status), true
		}
		return ClassV2, fmt.Sprintf("%d %s", se.Status, code), true
	case errors.Is(err, ErrDigestMismatch), errors.Is(err, ErrSizeMismatch):
		return ClassWrongBytes, kind, true
	case errors.Is(err, ErrCut):
		return ClassAbort, kind, true
	case errors.Is(err, ErrManifest), errors.Is(err, ErrPlatform):
		return ClassBadManifest, kind, true
	}
	return ClassNetwork, kind, true
}

// mustExistKey marks a context whose requests ask for content that must
// be there: this client pushed it and has not deleted it.
type mustExistKey struct{}

func withMustExist(ctx context.Context) context.Context {
	return context.WithValue(ctx, mustExistKey{}, true)
}

func mustExist(ctx context.Context) bool { v, _ := ctx.Value(mustExistKey{}).(bool); return v }

// tally counts one client's request outcomes by class and by detail.
type tally struct {
	mu       sync.Mutex
	classes  map[string]int64
	details  map[string]int64  // "class detail" → count, for every class but ok
	examples map[string]string // first message of each unclean class
}

func newTally() *tally {
	return &tally{classes: map[string]int64{}, details: map[string]int64{}, examples: map[string]string{}}
}

// settle records the outcome of one request; without a tally (pull, push)
// it does nothing.
func (c *client) settle(ctx context.Context, kind string, err error) {
	if c.tally == nil {
		return
	}
	class, detail, count := classify(ctx, kind, err)
	if !count {
		return
	}
	t := c.tally
	t.mu.Lock()
	defer t.mu.Unlock()
	t.classes[class]++
	if class == ClassOK {
		return
	}
	t.details[class+" "+detail]++
	if _, ok := t.examples[class]; !ok && !Clean(class) {
		t.examples[class] = err.Error()
	}
}

// add merges o into t.
func (t *tally) add(o *tally) {
	for k, n := range o.classes {
		t.classes[k] += n
	}
	for k, n := range o.details {
		t.details[k] += n
	}
	for _, k := range slices.Sorted(maps.Keys(o.examples)) {
		if _, ok := t.examples[k]; !ok {
			t.examples[k] = o.examples[k]
		}
	}
}
