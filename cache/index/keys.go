package index

import "github.com/opencontainers/go-digest"

const (
	prefixBlob = "b/"
	prefixTag  = "t/"
	prefixRepo = "r/"
	sep        = "\x00"
)

func blobKey(d digest.Digest) []byte { return []byte(prefixBlob + d.String()) }

func tagPrefix(repo string) []byte { return []byte(prefixTag + repo + sep) }

func tagKey(repo, tag, accept string) []byte {
	return []byte(prefixTag + repo + sep + tag + sep + accept)
}

func repoKey(repo string) []byte { return []byte(prefixRepo + repo) }
