package archive

import (
	"bufio"
	"fmt"
	"io"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharf-mirror/wharf/oci"
)

// ListItem is one line of an image list (what wharf warm fetches for an
// export to carry): an image name, and the platforms of it wanted (nil:
// all).
type ListItem struct {
	Image     string
	Platforms []ocispec.Platform
}

// ReadList reads an image list, one image a line, optionally followed by
// platforms ("nginx:1.27  linux/amd64,linux/arm64"); blank lines and
// lines starting with # are skipped. A line without platforms gets def.
// name is the list's, for errors. A list naming no image is an error.
func ReadList(r io.Reader, name string, def []ocispec.Platform) ([]ListItem, error) {
	var items []ListItem
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		it := ListItem{Image: fields[0], Platforms: def}
		switch {
		case len(fields) == 2:
			ps, err := ParsePlatforms(fields[1])
			if err != nil {
				return nil, fmt.Errorf("%s:%d: %w", name, n, err)
			}
			it.Platforms = ps
		case len(fields) > 2:
			return nil, fmt.Errorf("%s:%d: want IMAGE [PLATFORM,...], got %d fields", name, n, len(fields))
		}
		items = append(items, it)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("image list: %w", err)
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("image list %s names no image", name)
	}
	return items, nil
}

// ParsePlatforms reads "linux/amd64,linux/arm64/v8" ("" is none: all).
func ParsePlatforms(s string) ([]ocispec.Platform, error) {
	if s == "" {
		return nil, nil
	}
	var out []ocispec.Platform
	for _, part := range strings.Split(s, ",") {
		p, err := oci.ParsePlatform(strings.TrimSpace(part))
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}
