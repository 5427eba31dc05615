package main

import (
	"fmt"
	"strings"
)

// badgerLocked is how Badger says another process holds the index's
// directory lock. Its error wraps the flock failure with %+v, not %w, so
// the text is all there is to recognise it by.
const badgerLocked = "Cannot acquire directory lock"

// dataDirError explains a failure to open the data directory. Every
// command that opens the store goes through it, so each names the usual
// cause the same way: the index allows one process at a time, and the
// other one is most often a wharf serve (or warm, import, gc…) still
// running on the same --data.
func dataDirError(dir string, err error) error {
	if strings.Contains(err.Error(), badgerLocked) {
		return fmt.Errorf("data directory %s is in use: another wharf (serve, warm, import, export or an admin command) is running on it; "+
			"stop that one, or give this one its own --data (storage.dir, WHARF_DATA): %w", dir, err)
	}
	return fmt.Errorf("open %s (is another wharf running on it?): %w", dir, err)
}
