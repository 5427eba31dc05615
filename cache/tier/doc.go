// Package tier is a cache.Store over two stores: a local disk store
// (cache/disk), the hot tier, in front of a shared store that every
// replica of a cluster uses (cache/s3 in production; any cache.Store).
// The shared tier is the truth; the local tier is a bounded cache of it.
//
//	          Put                          Open
//	           │                            │
//	           ▼                            ▼
//	┌─ shared tier (S3) ─┐  ①      ┌─ local tier (disk) ─┐ hit: *os.File,
//	│ acknowledged once  │◀─────── │ blobs/sha256/ab/…   │ sendfile
//	│ the bytes are here │         │ tmp/ (staging)      │
//	└────────────────────┘         └─────────────────────┘
//	           │ ② rename the              ▲ │ miss: the shared tier's
//	           │   staged file             │ │ content, and one background
//	           └──────────────────────────▶┘ │ copy per digest, verified,
//	                                         ▼ then put locally
//	                                LRU under LocalMaxSize: local
//	                                copies go, shared copies stay
//
// Put writes the shared tier first and succeeds only when the shared tier
// has the bytes, so that content acknowledged to a client survives the
// loss of this replica; the staged file (staged in the local tier, so on
// its filesystem) is then renamed into the local tier. A shared tier that
// fails fails the Put and leaves the content nowhere.
//
// Open serves the local copy when there is one, as the disk store's
// *os.File (so a hit keeps http.ServeContent's sendfile path). On a miss
// it returns the shared tier's content and promotes the digest: a
// goroutine owned by the Store copies the object into a local staged
// file through oci's Verifier and puts it locally only if the bytes hash
// to the digest. One promotion runs per digest however many opens miss
// it, at most Options.Promotions at once, and Close cancels them and
// waits for them. With NoPromotions a miss is only read from the shared
// tier: for a process that reads everything once (wharf verify, export),
// whose copies no later open would use. A gate (GateShared, set by the
// cache in a cluster) is asked before a miss reads the shared tier: it
// turns content the bucket's eviction is deleting into a miss.
//
// Stat asks the local tier, then the shared one; Delete removes from the
// shared tier, then the local one; Walk lists the shared tier alone.
//
// The local tier is capped by Options.LocalMaxSize: past it, local copies
// are removed, least recently opened first, down to Options.LocalLowSize.
// Sizes and last opens are kept in memory, rebuilt from a walk of the
// local tier by New. A copy being read may be removed: on Linux an open
// file stays readable after unlink, so its reader reads on.
package tier
