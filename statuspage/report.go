package statuspage

import (
	"context"
	"time"

	"github.com/wharf-mirror/wharf/inspect"
)

// report is everything the template shows, computed before rendering
// so the template only formats.
type report struct {
	Generated time.Time
	Problems  []string // sources that failed; the page shows what it could get

	HasHoldings   bool
	Bytes, Items  int64
	Capacity      int64   // 0: unlimited
	UsedPercent   float64 // of Capacity
	HasStats      bool
	StatsAt       time.Time
	Repositories  int
	Tags          int64 // images: repo:tag names
	Manifests     int64
	Pulls, Hits   int64 // manifest pulls since the store was created
	Top           []inspect.RepoUsage
	MoreRepos     int
	EvictedBytes  float64
	FillsInFlight float64

	HasTraffic     bool
	Hits0, Misses0 float64 // since start, all kinds: the one hit ratio
	Stale          float64 // tag misses served from the cache because the upstream failed
	ByKind         []kindRatio
	ServedCache    float64 // bytes saved: served without asking an upstream
	ServedUpstream float64
	Fetched        float64 // bytes received from upstreams
	Prefetched     float64 // bytes prefetch fetched before a client asked
	PrefetchRead   float64 // of those, bytes clients then read
	Upstreams      []upstreamStatus
	HealthWindow   time.Duration // 0: since start

	// A cluster's replica, and the shared store: shown only when they run.
	HasCluster             bool
	MembersUp, Changes     float64
	PeerOK, PeerFailedOver float64 // requests to owning peers: answered; failed, the next asked
	PeerRelayed            float64 // the owner relayed the upstream's error
	PeerBytes, PeerServed  float64
	HasS3                  bool
	S3Requests, S3Bad      float64
	S3MeanLatency          time.Duration // 0: none timed yet
	LocalBytes, SharedRead float64

	HasErrors   bool
	Errors      []ErrorGroup
	ErrorGroups int // the most kept
}

type kindRatio struct {
	Kind         string
	Hits, Misses float64
}

// upstreamStatus is one upstream's row. Requests, Bad (no answer, 429 or
// 5xx) and FailedOps (failed even after retries) count within the health
// window; Fetched is since start.
type upstreamStatus struct {
	Name                     string
	Health                   string // ok | degraded | down | idle
	Breaker                  bool   // Down, Since, … come from the circuit breaker
	Down                     bool
	Since, NextProbe         time.Time
	LastError                string
	LastAt                   time.Time
	Requests, Bad, FailedOps float64
	Fetched                  float64
	HasBudget                bool
	Limit, Remain            float64
	Timed                    bool          // FirstByte known: an answer was timed lately
	FirstByte                time.Duration // the registry's least time to first byte
	Near                     bool          // the upstream's own word (Health): no prefetch, no segments
}

// report gathers what v may see from every source the page has.
func (p *Page) report(ctx context.Context, v Viewer) report {
	now := p.now()
	rep := report{Generated: now}
	if p.o.Errors != nil {
		rep.HasErrors, rep.Errors, rep.ErrorGroups = true, v.errors(p.o.Errors.Entries()), p.o.Errors.Limit()
	}
	var g gathered
	if p.o.Gatherer != nil {
		fams, err := p.o.Gatherer.Gather()
		if err != nil {
			rep.Problems = append(rep.Problems, "metrics: "+Redact(err.Error(), 300))
		}
		g = readGathered(fams) // Gather returns what it could even on error
		rep.HasTraffic = true
		p.traffic(&rep, g, now)
	}
	shared(&rep, g)
	rep.Capacity = int64(g.capacity)
	rep.EvictedBytes, rep.FillsInFlight = g.evictedBytes, g.fillsInFlight
	if p.o.Store == nil {
		rep.HasHoldings = p.o.Gatherer != nil
		rep.Bytes, rep.Items = int64(g.size), int64(g.blobs)
	} else {
		rep.HasHoldings = true
		rep.Bytes, rep.Items = p.o.Store.Usage()
		st, at, err := p.stats.get(ctx, now, p.o.Store.Stats)
		if err != nil {
			rep.Problems = append(rep.Problems, "store statistics: "+Redact(err.Error(), 300))
		} else {
			rep.HasStats, rep.StatsAt = true, at
			rep.Tags, rep.Manifests = st.Tags, st.Manifests
			rep.Pulls, rep.Hits = st.Pulls, st.Hits
			rep.Top = v.repos(st.Repos)
			rep.Repositories = len(rep.Top)
			if !v.ReadsAll {
				rep.Tags = 0
				for _, u := range rep.Top {
					rep.Tags += int64(u.Tags)
				}
			}
			if len(rep.Top) > topRepos {
				rep.Top, rep.MoreRepos = rep.Top[:topRepos], len(rep.Top)-topRepos // of those v may read
			}
		}
	}
	if rep.Capacity > 0 {
		rep.UsedPercent = min(100, 100*float64(rep.Bytes)/float64(rep.Capacity))
	}
	return rep
}

// traffic fills the hit ratio, bytes and upstream rows from the counters.
func (p *Page) traffic(rep *report, g gathered, now time.Time) {
	for _, k := range []string{"manifest", "tag", "blob"} {
		if g.hits[k]+g.misses[k] > 0 {
			rep.ByKind = append(rep.ByKind, kindRatio{Kind: k, Hits: g.hits[k], Misses: g.misses[k]})
		}
	}
	for _, v := range g.hits {
		rep.Hits0 += v
	}
	for _, v := range g.misses {
		rep.Misses0 += v
	}
	rep.Stale = g.stale["tag"]
	rep.ServedCache, rep.ServedUpstream = g.served["cache"], g.served["upstream"]
	rep.Prefetched, rep.PrefetchRead = g.prefetched, g.prefetchRd
	for _, v := range g.upstreamBytes {
		rep.Fetched += v
	}

	cur := healthSnap{at: now, req: g.upRequests, bad: g.upBadResponses, ops: g.upFailures}
	base, windowed := p.health.since(cur)
	if windowed {
		rep.HealthWindow = now.Sub(base.at).Round(time.Second)
	}
	for _, name := range g.upstreams(p.o.Upstreams) {
		u := upstreamStatus{
			Name:      name,
			Requests:  cur.req[name] - base.req[name],
			Bad:       cur.bad[name] - base.bad[name],
			FailedOps: cur.ops[name] - base.ops[name],
			Fetched:   g.upstreamBytes[name],
			Remain:    g.remain[name],
		}
		u.Limit, u.HasBudget = g.limit[name]
		if s, ok := g.firstByte[name]; ok {
			u.Timed, u.FirstByte = true, time.Duration(s*float64(time.Second))
		}
		u.Health = grade(u.Requests, u.Bad, u.FailedOps)
		p.breakerState(&u)
		rep.Upstreams = append(rep.Upstreams, u)
	}
}

// shared fills the cluster's and the shared store's numbers.
func shared(rep *report, g gathered) {
	rep.HasCluster, rep.MembersUp, rep.Changes = g.hasCluster, g.membersUp, g.changes
	rep.PeerOK, rep.PeerFailedOver, rep.PeerRelayed = g.peerReq["ok"], g.peerReq["failed_over"], g.peerReq["relayed_error"]
	rep.PeerBytes, rep.PeerServed = g.peerBytes, g.peerServed
	rep.HasS3, rep.S3Requests, rep.S3Bad = g.hasS3, g.s3Requests, g.s3Bad
	if g.s3Timed > 0 {
		rep.S3MeanLatency = time.Duration(g.s3Seconds / g.s3Timed * float64(time.Second))
	}
	rep.LocalBytes, rep.SharedRead = g.localBytes, g.sharedR
}

// breakerState puts the circuit breaker's word on u: it alone says down
// (it stops sending while it does), and traffic that was all bad while the
// breaker lets requests through is only degraded.
func (p *Page) breakerState(u *upstreamStatus) {
	if p.o.Health == nil {
		return
	}
	b, ok := p.o.Health(u.Name)
	if !ok {
		return
	}
	u.Breaker, u.Down, u.Since, u.LastError, u.LastAt = true, b.Down, b.Since, Redact(b.LastError, 200), b.LastAt
	u.Near = b.Near
	switch {
	case b.Down:
		u.Health, u.NextProbe = "down", b.NextProbe
	case u.Health == "down":
		u.Health = "degraded"
	}
}

// repos keeps the repositories v may read, in order.
func (v Viewer) repos(all []inspect.RepoUsage) []inspect.RepoUsage {
	if v.ReadsAll {
		return all
	}
	out := make([]inspect.RepoUsage, 0, len(all))
	for _, u := range all {
		if v.mayRead(u.Repo) {
			out = append(out, u)
		}
	}
	return out
}

// errors keeps the entries v may see.
func (v Viewer) errors(all []ErrorGroup) []ErrorGroup {
	if v.ReadsAll {
		return all
	}
	out := make([]ErrorGroup, 0, len(all))
	for _, e := range all {
		if e.Repo != "" && v.mayRead(e.Repo) {
			out = append(out, e)
		}
	}
	return out
}
