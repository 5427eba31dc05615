package cluster

import (
	"context"
	"net/http"
)

// What the tests reach inside: the ranking as a pure function, one health
// check, and the state machine fed a sequence of outcomes.

func RankOf(members []Member, key string) []Member { return rank(members, key) }

func OwnerOf(members []Member, key string) Member { return owner(members, key) }

func Check(ctx context.Context, client *http.Client, peer, secret string) error {
	return check(ctx, client, peer, secret)
}

// Observe feeds outcomes (true: a successful check) to a new peer's state
// and returns whether it was down after each.
func Observe(downAfter int, outcomes []bool) []bool {
	var s peerState
	down := make([]bool, len(outcomes))
	for i, ok := range outcomes {
		var err error
		if !ok {
			err = errFailed
		}
		s.observe(err, downAfter)
		down[i] = s.down
	}
	return down
}

var errFailed = errorString("check failed")

type errorString string

func (e errorString) Error() string { return string(e) }
