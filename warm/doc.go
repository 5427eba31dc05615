// Package warm fills a store from its upstreams with the images a list
// names (wharf warm), so that wharf export can carry them across an air
// gap, or a site starts with them cached.
//
// It pulls through the store's own read path, the one a client's pull
// takes (Store, which *cache.Cache satisfies): every manifest and blob is
// verified as it streams in and kept only when its digest checks out, and
// a fill another reader started is shared, not repeated. Of a
// multi-platform image it keeps the index and the children that match the
// platforms asked for (oci.MatchPlatform, containerd's platform matching),
// all of them when none are asked for; the blobs of one image are fetched
// a few at a time.
//
// The list's format is archive's (archive.ReadList), and so is the way a
// name maps to a stored repository (archive.Namer, the caller's: the
// naming rules are the serving wharf's), so that an export finds what was
// warmed.
//
// Files:
//
//	warm.go  Image, Store, Report: one image, its children and its blobs
//	list.go  List, Status: a list, a line per image, the totals
package warm
