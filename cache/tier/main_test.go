package tier_test

import "testing"

// TestMain stops the MinIO server before looking for leaks: the
// goroutines of the connections to it end with it.
func TestMain(m *testing.M) { minio.Main(m) }
