// Package config builds the one typed Config that `wharf serve` runs with.
//
// A setting's value comes from four layers, each overriding only what it
// sets:
//
//	Default()  <  YAML file (--config / WHARF_CONFIG)  <  WHARF_* environment  <  flags
//
// One table (Settings) names every setting's YAML path, flag and environment
// variable, and the flag parser, the environment reader, the YAML decoder and
// --help are all driven by it, so they cannot drift apart. example.yaml
// documents every field at its default and a test loads it.
//
// The YAML file is decoded strictly by walking its node tree against that
// table rather than by reflection into the struct: an unknown key is an error
// that names the key, its line and, for a near miss such as "maxsize" or
// "max_size", the key that was meant. Every value, whichever layer it came
// from, is parsed by the same function, so "20GiB" means the same thing in
// the file, in WHARF_MAX_SIZE and in --max-size.
//
// Load reports every problem at once (errors.Join), each naming where it is:
// a file line, an environment variable or a flag for values that do not
// parse, and the YAML field path for values that parse but are out of range,
// so an operator fixes a broken config in one round trip rather than one
// error per restart.
//
// An empty environment variable counts as unset, because container tooling
// routinely passes `WHARF_X=` for variables the operator left blank; an empty
// YAML value (`listen:`) likewise leaves the default. A flag given with an
// empty value (`--debug-listen=`) is explicit and does apply.
//
// Secrets are of type Secret, whose every printing path redacts, so a
// Config can be logged whole.
package config
