package config

import (
	"fmt"
	"io"
)

const usageHeader = `Usage: wharf serve [flags]

Serve a caching pull-through mirror of a container registry.

Each setting is taken from, in increasing priority: its default, the YAML
file given by --config, its WHARF_* environment variable, its flag. Flags
may be written -name or --name.

Settings:
`

// writeUsage prints --help: each setting's flag and variable, then its
// help text and default, laid out like the flag package's own defaults.
func writeUsage(w io.Writer, settings []Setting) {
	fmt.Fprint(w, usageHeader)
	for _, s := range settings {
		fmt.Fprintf(w, "  --%s %s, %s\n    \t%s", s.Flag, s.Arg, s.Env, s.Help)
		if s.Default != "" {
			fmt.Fprintf(w, " (default %q)", s.Default)
		}
		fmt.Fprintln(w)
	}
}
