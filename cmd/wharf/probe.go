package main

import (
	"context"
	"fmt"
	"sync"

	"github.com/sirupsen/logrus"

	"github.com/wharf-mirror/wharf/upstream"
)

// trimAPIPath drops a "/v2" or "/v2/" the operator gave at the end of an
// upstream URL (setting is its config path, "upstream" or "upstreams[0]"),
// warning once: kept, it would make every request /v2/v2/….
func trimAPIPath(raw, setting string, log logrus.FieldLogger) string {
	base, trimmed := upstream.TrimAPIPath(raw)
	if trimmed {
		log.WithFields(logrus.Fields{"setting": setting + ".url", "url": raw}).Warn(fmt.Sprintf(
			"%s.url %s ends in /v2, which wharf adds itself: using %s; write that in the setting", setting, raw, base))
	}
	return base
}

// probe checks every upstream once, in the background, and logs one
// warning for each that looks misconfigured or down, naming its setting
// and what to change. Start-up never waits for it nor fails because of it:
// starting while an upstream is down is a feature (the cache serves what
// it has). The returned stop cancels the probes still running and waits
// for them; serve calls it on the way out.
func (u *upstreams) probe(ctx context.Context, log logrus.FieldLogger) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for i, c := range u.clients {
		l := log.WithFields(logrus.Fields{"upstream": c.Name(), "setting": u.paths[i] + ".url"})
		l.Debug("probing upstream")
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := c.Probe(ctx, upstream.DefaultProbeTimeout)
			if ctx.Err() != nil {
				return // stopping: the answer says nothing about the upstream
			}
			l := l.WithField("url", res.URL)
			if res.OK() {
				l.WithField("status", res.Status).Debug("upstream answers")
				return
			}
			l.Warn(fmt.Sprintf("%s.url %s: %s; %s", u.paths[i], res.URL, res.Problem(), res.Fix()))
		}()
	}
	return func() {
		cancel()
		wg.Wait()
	}
}
