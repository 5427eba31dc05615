package oci

import (
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Docker media types (github.com/moby/docker-image-spec defines them; the
// strings are the wire format and never change).
const (
	DockerManifest      = "application/vnd.docker.distribution.manifest.v2+json"
	DockerManifestList  = "application/vnd.docker.distribution.manifest.list.v2+json"
	DockerSchema1       = "application/vnd.docker.distribution.manifest.v1+json"
	DockerSchema1Signed = "application/vnd.docker.distribution.manifest.v1+prettyjws"
)

// ServedManifests lists every manifest type wharf serves, indexes first: the
// Accept values of a request that wants whatever the registry holds under
// a reference (a registry may answer 404 for a type not accepted).
var ServedManifests = []string{
	ocispec.MediaTypeImageIndex, DockerManifestList,
	ocispec.MediaTypeImageManifest, DockerManifest,
}

// IsIndex reports whether mediaType names a list of manifests.
func IsIndex(mediaType string) bool {
	return mediaType == ocispec.MediaTypeImageIndex || mediaType == DockerManifestList
}

// KnownManifest reports whether mediaType is a manifest type wharf understands.
func KnownManifest(mediaType string) bool {
	switch mediaType {
	case ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageIndex, DockerManifest,
		DockerManifestList, DockerSchema1, DockerSchema1Signed:
		return true
	}
	return false
}

// DockerConfig is a Docker schema 2 image's config.
const DockerConfig = "application/vnd.docker.container.image.v1+json"

// IsImageConfig reports whether mediaType is a runnable image's config,
// OCI or Docker: an artifact (a signature, an SBOM, a Helm chart) has
// another.
func IsImageConfig(mediaType string) bool {
	return mediaType == ocispec.MediaTypeImageConfig || mediaType == DockerConfig
}

// DockerForeignLayer is a Docker layer kept elsewhere (Windows base
// layers): manifests may name it without the registry holding it.
const DockerForeignLayer = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"

// MaxManifestSize bounds a manifest's body, as distribution does (4 MiB):
// a manifest is read whole into memory, so a larger one is refused, from
// an upstream, a client's push or an archive alike.
const MaxManifestSize = 4 << 20

// Pushable reports whether mediaType is a manifest wharf stores, pushed or
// pulled: OCI image manifests (artifacts included) and indexes, Docker
// schema 2 manifests and manifest lists. Docker schema 1 is neither: it is
// deprecated, gone from distribution v3 and Docker Hub, signed with keys
// wharf does not hold, and its digest is not that of the bytes received.
func Pushable(mediaType string) bool {
	switch mediaType {
	case ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageIndex, DockerManifest, DockerManifestList:
		return true
	}
	return false
}

// Foreign reports whether d names content that lives outside registries
// (non-distributable layers): a manifest may reference it unpushed.
func Foreign(d ocispec.Descriptor) bool {
	return d.MediaType == DockerForeignLayer || strings.Contains(d.MediaType, ".nondistributable.")
}
