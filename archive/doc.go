// Package archive carries images across an air gap: Export writes what a
// store holds as an OCI image layout (a directory or a tar) or as a
// tarball docker load takes; Import takes such layouts, and docker save
// tarballs of any docker version, into a store. ReadList reads the image
// list wharf warm fills a store from before an export.
//
// It works on a store through the interfaces it defines (ExportStore,
// ImportStore), which *cache.Cache satisfies, and reads image names
// through a Namer its caller gives it: the naming rules (upstreams,
// prefixes, Docker Hub's library/) are the serving wharf's, so that an
// import stores each image where a pull looks. It knows nothing of HTTP,
// configuration or the index under the store.
//
// What it keeps:
//
//   - Nothing unverified lands: every blob and manifest is hashed as it
//     is read, against the digest its archive states (a blobs/ name, a
//     docker image ID, a config's diff IDs), bottom-up (blobs, then the
//     manifests that reference them, then the tag). A blob is staged in a
//     file of the store's and handed to its Ingest only once verified.
//   - All or nothing: an import checks every archive whole (dryRun) before
//     storing anything, so a refused archive leaves the store as it was.
//   - An archive cannot reach outside itself: names are cleaned, links
//     followed only inside it, sizes checked before reading, metadata
//     files read under a limit.
//   - Nothing damaged travels: an export re-hashes each blob as it copies,
//     and writes a layout directory's files under temp names first.
//   - The same export is the same bytes (fixed times and owners).
//
// Files:
//
//	export.go   Export, ExportStore, the selection of images by name
//	plan.go     what an export writes, walked and checked first
//	write.go    the layout's files, index.json and docker's manifest.json
//	sink.go     a layout directory or a tar stream, written once per name
//	import.go   Import, ImportStore, one import pass and its counts
//	check.go    the first pass, which checks and stores nothing
//	verify.go   what both passes judge content by: oci's verifying reader
//	            for blobs, checkManifest for manifests
//	source.go   an archive read in place: a directory or an indexed tar
//	layout.go   an OCI image layout's index.json, manifests and blobs
//	docker.go   docker save's manifest.json, either side of docker 25
//	names.go    Name, Namer, and the names an export writes
//	list.go     the image list wharf warm reads
package archive
