// Command wharf is a caching pull-through mirror for container registries.
//
//	wharf serve [flags]     run the mirror (see wharf serve --help)
//	wharf bench pull|push   load-test a registry or mirror
//	wharf verify|gc|du      check, trim and describe a stopped store
//	wharf warm|export|import  supply an air-gapped site
//	wharf version           print the version
//
// main.go dispatches subcommands; serve.go is the only place that wires
// config, metrics, upstreams, cache and proxy together for serving; the
// store commands open a data directory on their own (one process at a time).
package main
