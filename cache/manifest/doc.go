// Package manifest reads what a manifest references, whatever its kind:
// Docker schema2 manifests and manifest lists, OCI image manifests and
// indexes, OCI artifacts, and legacy schema1 (blobSums). The cache keeps a
// manifest's references so that eviction never leaves a manifest pointing at
// missing blobs, and so that pushes can check that what a manifest names
// exists.
package manifest
