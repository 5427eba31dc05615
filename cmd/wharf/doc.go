// Command wharf is a caching pull-through mirror for container registries.
//
//	wharf serve [flags]   run the mirror (see wharf serve --help)
//	wharf version         print the version
//
// main.go dispatches subcommands; serve.go is the only place that wires
// config, metrics, upstream, cache and proxy together.
package main
