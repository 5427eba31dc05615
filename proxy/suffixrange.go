package proxy

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// withoutEmptySuffixes removes from a Range header the suffix ranges that
// select no byte: "-0", or any suffix of an empty blob. RFC 9110 §14.1.1
// calls them unsatisfiable, but http.ServeContent answers them with a 206
// whose Content-Range ends before it starts ("bytes 1000-999/1000"), a
// response clients cannot use (found by FuzzBlobRange). It returns the
// header to hand ServeContent, and none=true when every range was such a
// suffix: the whole set is unsatisfiable (416). Anything else, malformed
// ranges included, is left for ServeContent to judge.
func withoutEmptySuffixes(header string, size int64) (out string, none bool) {
	specs, ok := strings.CutPrefix(header, "bytes=")
	if !ok {
		return header, false
	}
	var kept []string
	dropped := false
	for _, spec := range strings.Split(specs, ",") {
		first, last, isRange := strings.Cut(strings.TrimSpace(spec), "-")
		last = strings.TrimSpace(last)
		if isRange && strings.TrimSpace(first) == "" && !strings.HasPrefix(last, "-") {
			if n, err := strconv.ParseInt(last, 10, 64); err == nil && min(n, size) == 0 {
				dropped = true
				continue
			}
		}
		if strings.TrimSpace(spec) != "" {
			kept = append(kept, spec)
		}
	}
	if !dropped {
		return header, false
	}
	if len(kept) == 0 {
		return "", true
	}
	return "bytes=" + strings.Join(kept, ","), false
}

// tameRange prepares r's Range for http.ServeContent on a cached blob of
// size bytes: an abusive one is dropped (the whole blob is sent), empty
// suffix ranges are removed, and if none is left it answers 416 itself
// and reports true.
func tameRange(w http.ResponseWriter, r *http.Request, size int64) (answered bool) {
	dropAbusiveRange(r, size)
	rng, none := withoutEmptySuffixes(r.Header.Get("Range"), size)
	if none {
		h := w.Header()
		h.Set("Content-Range", fmt.Sprintf("bytes */%d", size))
		h.Del("Content-Type")
		http.Error(w, errRangeUnsatisfiable.Error(), http.StatusRequestedRangeNotSatisfiable)
		return true
	}
	if rng != r.Header.Get("Range") {
		r.Header.Set("Range", rng)
	}
	return false
}
