//go:build !linux

package bench

import "os"

// IsTerminal reports whether f is a terminal. Off Linux it settles for a
// character device, which a redirect to /dev/null would also be; the cost
// of being wrong is a progress line in a log.
func IsTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
