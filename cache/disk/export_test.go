package disk

// OnSyncDir replaces the directory fsync with fn.
func (s *Store) OnSyncDir(fn func(dir string) error) { s.syncDir = fn }
