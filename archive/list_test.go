package archive

import (
	"reflect"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// TestReadList reads image lists as wharf warm is given them: comments
// and blank lines skipped, a line's own platforms over the default, and
// each mistake refused with the line that has it.
func TestReadList(t *testing.T) {
	arm := ocispec.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}
	def := []ocispec.Platform{amd64}
	for _, tc := range []struct {
		name, list string
		want       []ListItem
		err        string
	}{
		{"images", "# a comment\nalpine:3.20\n\n  nginx:1.27  linux/amd64,linux/arm64/v8\n",
			[]ListItem{{"alpine:3.20", def}, {"nginx:1.27", []ocispec.Platform{amd64, arm}}}, ""},
		{"three fields", "alpine:3.20\nnginx linux/amd64 extra\n", nil, "images.txt:2: want IMAGE [PLATFORM,...], got 3 fields"},
		{"bad platform", "nginx linux/amd64/v1/x\n", nil, "images.txt:1:"},
		{"empty", "# nothing\n\n", nil, "image list images.txt names no image"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ReadList(strings.NewReader(tc.list), "images.txt", def)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Errorf("error %v, want one saying %q", err, tc.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}
