// Package oci is wharf's vocabulary for OCI content, and the one place
// each rule about it is written: the manifest media types wharf serves and
// accepts, the manifest size limit, what a manifest references
// (ParseManifest) and whether it is one wharf stores (ValidateManifest),
// which index entry is for a platform, what a valid tag is, and the check
// that bytes are the content a digest names (Verifier): hashed as they
// pass, judged at the end, so that nothing unverified becomes visible.
//
// It knows nothing of the store, HTTP or the upstream: every layer of
// wharf uses it, and it imports no package of wharf's.
package oci
