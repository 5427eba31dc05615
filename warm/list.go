package warm

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/wharf-mirror/wharf/archive"
)

// Status is a line redrawn while an image is fetched (a terminal's status
// line); Show is called from the fetching goroutines. nil draws nothing.
type Status interface {
	Show(format string, args ...any)
	Clear()
}

// List warms each item in turn and writes a line for each to out, then
// the totals. name reads the items' names as the serving wharf does, so
// that an export (which reads its names the same way) finds what was
// warmed. One that fails does not stop the others, but fails the list:
// the error names every image that failed.
func List(ctx context.Context, s Store, name archive.Namer, items []archive.ListItem, out io.Writer, status Status) error {
	if status == nil {
		status = noStatus{}
	}
	var total Report
	var failed []string
	start := time.Now()
	for i, it := range items {
		img, err := name(it.Image)
		if err == nil {
			var bytes atomic.Int64
			show := func(n int64) {
				status.Show("[%d/%d] %s  %s", i+1, len(items), it.Image, human(bytes.Add(n)))
			}
			show(0)
			var rep Report
			rep, err = Image(ctx, s, img.Repo, img.Ref(), it.Platforms, show)
			total.Manifests += rep.Manifests
			total.Blobs += rep.Blobs
			total.Fetched += rep.Fetched
			total.Bytes += rep.Bytes
			if err == nil {
				status.Clear()
				fmt.Fprintf(out, "ok      %s  %s  %d blobs, %d fetched (%s)\n", it.Image, rep.Descriptor.Digest, rep.Blobs, rep.Fetched, human(rep.Bytes))
			}
		}
		if err != nil {
			status.Clear()
			fmt.Fprintf(out, "FAILED  %s: %v\n", it.Image, err)
			failed = append(failed, it.Image)
		}
		if ctx.Err() != nil {
			break
		}
	}
	fmt.Fprintf(out, "warmed %d of %d images in %s: %d manifests, %d blobs, %d fetched (%s)",
		len(items)-len(failed), len(items), time.Since(start).Round(time.Millisecond),
		total.Manifests, total.Blobs, total.Fetched, human(total.Bytes))
	if len(failed) > 0 {
		fmt.Fprintf(out, "; %d failed", len(failed))
	}
	fmt.Fprintln(out)
	if len(failed) > 0 {
		return fmt.Errorf("%d of %d images failed: %s", len(failed), len(items), strings.Join(failed, ", "))
	}
	return ctx.Err()
}

type noStatus struct{}

func (noStatus) Show(string, ...any) {}
func (noStatus) Clear()              {}

// human writes a byte count in binary units, as wharf's other commands
// do: "1.5 KiB", "312 MiB".
func human(n int64) string { return humanize.IBytes(uint64(max(0, n))) }
