package peer

import (
	"context"

	"github.com/wharf-mirror/wharf/cluster"
	"github.com/wharf-mirror/wharf/metrics"
)

// Membership is what Watch consumes of *cluster.Cluster.
type Membership interface {
	Members() []cluster.Member
	Changed() <-chan struct{}
}

// Watch publishes the cluster's changes to m until ctx ends: every change
// of the members or of their state counts (each moves the owners of the
// keys a member ranked first) and sets the members up. The caller runs
// it in a goroutine it waits for.
func Watch(ctx context.Context, c Membership, m *metrics.Metrics) {
	ch := c.Changed()
	m.SetClusterMembersUp(up(c.Members()))
	for {
		select {
		case <-ctx.Done():
			return
		case <-ch:
		}
		ch = c.Changed() // before reading, so no change is missed
		m.ClusterChanged(up(c.Members()))
	}
}

func up(ms []cluster.Member) int {
	n := 0
	for _, m := range ms {
		if m.Up {
			n++
		}
	}
	return n
}
