package metrics

// Names of the collectors that other packages read back from the registry
// by name (the status page does). Defined once here and used where each
// collector is built, so a rename changes the reader too; names_test.go
// checks that each one is registered by New.
const (
	NameCacheHits          = "wharf_cache_hits_total"
	NameCacheMisses        = "wharf_cache_misses_total"
	NameStaleServed        = "wharf_stale_served_total"
	NameServedBytes        = "wharf_served_bytes_total"
	NameFillsInFlight      = "wharf_fills_in_flight"
	NameCacheSize          = "wharf_cache_size_bytes"
	NameCacheBlobs         = "wharf_cache_blobs"
	NameEvictedBytes       = "wharf_cache_evicted_bytes_total"
	NameCapacity           = "wharf_cache_capacity_bytes"
	NameUpstreamRequests   = "wharf_upstream_requests_total"
	NameUpstreamBytes      = "wharf_upstream_bytes_total"
	NameUpstreamFailures   = "wharf_upstream_failures_total"
	NameRateLimitLimit     = "wharf_upstream_ratelimit_limit"
	NameRateLimitRemaining = "wharf_upstream_ratelimit_remaining"
	NamePeerRequests       = "wharf_peer_requests_total"
	NamePeerReceivedBytes  = "wharf_peer_received_bytes_total"
	NamePeerServed         = "wharf_peer_served_total"
	NameClusterChanges     = "wharf_cluster_owner_changes_total"
	NameClusterMembersUp   = "wharf_cluster_members_up"
	NameS3Requests         = "wharf_s3_requests_total"
	NameSharedSize         = "wharf_shared_store_bytes"
	NameS3Latency          = "wharf_s3_request_seconds"
	NameTierLocalBytes     = "wharf_tier_local_bytes"
	NameTierSharedReads    = "wharf_tier_shared_reads_total"
	NameUpstreamFirstByte  = "wharf_upstream_first_byte_seconds"
	NamePrefetchBytes      = "wharf_prefetch_bytes_total"
	NamePrefetchUsedBytes  = "wharf_prefetch_used_bytes_total"
)

// Shared eviction's handshakes and what it spared (cache/sharedevicting.go).
const (
	NameClusterEvictHandshakes = "wharf_cluster_evict_handshakes_total"
	NameClusterEvictSpared     = "wharf_cluster_evict_spared_total"
)
