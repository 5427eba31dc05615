package cache

import "github.com/opencontainers/go-digest"

// Filling reports whether a fill of d is running: one a client started,
// or any other. Work that can wait (prefetch) asks it before Blob, and
// leaves a running fill to the reader that started it rather than join
// it and count its bytes as its own.
func (c *Cache) Filling(d digest.Digest) bool {
	fw := c.fills.Follow(d)
	if fw == nil {
		return false
	}
	fw.Close()
	return true
}
