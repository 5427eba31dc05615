package index

import "github.com/opencontainers/go-digest"

const (
	prefixBlob   = "b/"
	prefixTag    = "t/"
	prefixRepo   = "r/"
	prefixLocal  = "l/"
	prefixAccess = "a/"
	prefixStats  = "s/"
	prefixLink   = "k/"
	prefixHeld   = "h/"
	// linksVersionKey marks a store whose links all have reverse keys.
	linksVersionKey = "v/links"
	sep             = "\x00"
)

func blobKey(d digest.Digest) []byte { return []byte(prefixBlob + d.String()) }

func tagPrefix(repo string) []byte { return []byte(prefixTag + repo + sep) }

func tagKey(repo, tag, accept string) []byte {
	return []byte(prefixTag + repo + sep + tag + sep + accept)
}

func repoKey(repo string) []byte { return []byte(prefixRepo + repo) }

func localTagPrefix(repo string) []byte { return []byte(prefixLocal + repo + sep) }

func localTagKey(repo, tag string) []byte { return []byte(prefixLocal + repo + sep + tag) }

func accessKey(d digest.Digest) []byte { return []byte(prefixAccess + d.String()) }

func statsKey(repo string) []byte { return []byte(prefixStats + repo) }

func linkKey(repo string, d digest.Digest) []byte {
	return []byte(prefixLink + repo + sep + d.String())
}

func heldPrefix(d digest.Digest) []byte { return []byte(prefixHeld + d.String() + sep) }

func heldKey(d digest.Digest, repo string) []byte { return append(heldPrefix(d), repo...) }
