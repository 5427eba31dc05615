package main

import (
	"fmt"
	"strings"

	"github.com/wharf-mirror/wharf/config"
)

// access is what the start-up log says about who may do what, so an
// operator reads in one line whether this wharf is open to pushes.
type access struct {
	pull, push string   // "anyone", "users", "users and anonymous (by rules)", …
	warnings   []string // configurations that open more than a site's mirror should
}

func describeAccess(cfg config.Config) access {
	a := cfg.Auth
	rules, _ := a.ParsedRules() // validated already
	anonRules := 0
	for _, r := range rules {
		if r.User == config.AnonymousUser {
			anonRules++
		}
	}
	asRules := ""
	if len(rules) > 0 {
		asRules = " (as rules grant)"
	}
	// who lists the principals let in: users (with an htpasswd file) and
	// anonymous clients (when anonymous is on).
	who := func(anonymous bool) string {
		var parts []string
		if a.Htpasswd != "" {
			parts = append(parts, "users")
		}
		if anonymous {
			parts = append(parts, "anonymous clients")
		}
		if len(parts) == 0 {
			return ""
		}
		return strings.Join(parts, " and ") + asRules
	}
	var out access
	out.pull = who(a.Htpasswd == "" || a.AnonymousPullOn() || a.AnonymousPushOn())
	out.push = who(a.AnonymousPushOn())
	if out.push == "" {
		out.push = "nobody (a read-only mirror: --htpasswd or --anonymous-push open pushes)"
	}
	if a.AnonymousPushOn() {
		out.warnings = append(out.warnings, fmt.Sprintf(
			"anonymous pushes and deletes are ON: any client that reaches %s may push%s", cfg.Listen,
			map[bool]string{true: " where a rule for anonymous grants write", false: " and delete anywhere"}[anonRules > 0]))
	}
	if (a.AnonymousPullOn() || a.AnonymousPushOn()) && len(rules) > 0 && anonRules == 0 {
		out.warnings = append(out.warnings,
			"anonymous clients are let in, but no rule names \"anonymous\": with rules they get nothing")
	}
	for _, u := range append([]config.NamedUpstream{{Name: cfg.Upstream.DefaultName(), Registry: cfg.Upstream.Registry}}, cfg.Upstreams...) {
		if u.ShadowTags != nil && *u.ShadowTags {
			out.warnings = append(out.warnings, fmt.Sprintf(
				"pushes may replace tags that %s serves (shadowTags): clients pulling those names get the pushed images", u.Name))
		}
	}
	return out
}
