// Package bench is the load generator behind `wharf bench`: simulated
// clients that speak the registry API directly, as the docker daemon does,
// so that a mirror or a registry can be measured without a container engine
// (and its unpacking, which is slower than any registry) in the way.
//
// A pull (pull.go) resolves a reference with the daemon's Accept headers,
// follows an index to the manifest of one platform, then fetches the config
// and the layers with bounded parallelism (the daemon's default is 3),
// verifying every digest and size as the bytes stream past (verify.go) and
// discarding them. A push (push.go) generates random, incompressible layers
// from a seeded ChaCha8 stream (random.go), so a layer never sits in memory,
// uploads them monolithically or in chunks, then puts the manifest.
//
// Every simulated client owns its HTTP transport and its token cache, as
// separate daemons would; the driver (run.go) starts them, stops them after
// a number of operations or a duration, and merges what each recorded
// (stats.go) into a Result (result.go): operations and bytes per second,
// latency percentiles by request kind, errors by kind (errors.go).
//
// Request failures are results, not errors: Pull and Push return an error
// only when the run could not start (bad options, an unparsable reference).
//
// Layout:
//
//	options.go   PullOptions, PushOptions, their validation
//	client.go    one simulated client's HTTP stack (auth from upstream/transport)
//	reference.go IMAGE arguments
//	manifest.go  Accept headers, manifest and index parsing, platform choice
//	pull.go      one pull;  push.go  one push
//	verify.go    the digest-checking reader
//	run.go       the driver; progress.go the live line on a terminal
//	stats.go     latency samples and percentiles; result.go the report
package bench
