package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

// LoadOptions are Load's inputs, spelled out so tests and other commands can
// supply each one.
type LoadOptions struct {
	// Args are the arguments after "serve".
	Args []string
	// LookupEnv reads the environment; os.LookupEnv in production. nil
	// means an empty environment.
	LookupEnv func(string) (string, bool)
	// Output receives --help's usage text. nil means os.Stderr.
	Output io.Writer
}

// Load builds the Config for `wharf serve` from defaults, the YAML file,
// WHARF_* variables and the flags in args, in that order of priority, then
// validates it. args are the arguments after "serve"; lookupEnv is
// os.LookupEnv in production. With -h or --help it prints usage to
// os.Stderr and returns flag.ErrHelp. See LoadWith.
func Load(args []string, lookupEnv func(string) (string, bool)) (Config, error) {
	return LoadWith(LoadOptions{Args: args, LookupEnv: lookupEnv})
}

// LoadWith is Load with every input given. On error it returns the zero
// Config and an error joining every problem found (see the package doc),
// except for flag syntax errors and flag.ErrHelp, which are returned alone.
func LoadWith(o LoadOptions) (Config, error) {
	out := o.Output
	if out == nil {
		out = os.Stderr
	}
	lookup := o.LookupEnv
	if lookup == nil {
		lookup = func(string) (string, bool) { return "", false }
	}
	table := bindings()

	given, err := parseFlags(o.Args, table)
	if errors.Is(err, flag.ErrHelp) {
		writeUsage(out, Settings())
		return Config{}, flag.ErrHelp
	}
	if err != nil {
		return Config{}, err
	}

	cfg := Default()
	l := &loader{cfg: &cfg, from: map[string]string{}, lookup: lookup}

	// The file's name is itself a setting (the one row without a field),
	// read from the environment and flags before either is applied.
	file := ""
	for _, b := range table {
		if b.field != nil {
			continue
		}
		if v, ok := lookup(b.Env); ok && v != "" {
			file = v
		}
		if v, ok := given[b.Flag]; ok {
			file = v
		}
	}
	if file != "" {
		if data, err := os.ReadFile(file); err != nil {
			l.fail(fmt.Errorf("config file: %w", err))
		} else {
			l.decodeYAML(file, data, table)
		}
	}

	for _, b := range table {
		if v, ok := lookup(b.Env); ok && v != "" && b.field != nil {
			l.set(b, v, b.Env)
		}
	}
	for _, b := range table {
		if v, ok := given[b.Flag]; ok && b.field != nil {
			l.set(b, v, "--"+b.Flag)
		}
	}

	for _, p := range cfg.problems() {
		p.from = l.from[p.path]
		l.fail(p)
	}
	l.resolve()
	if len(l.errs) > 0 {
		return Config{}, errors.Join(l.errs...)
	}
	return cfg, nil
}

// parseFlags parses args against the table and returns the value of each
// flag actually given (flag.Visit), as text; values are parsed later with
// every other layer's. It returns flag.ErrHelp for -h and --help.
func parseFlags(args []string, table []binding) (map[string]string, error) {
	fs := flag.NewFlagSet("wharf serve", flag.ContinueOnError)
	// Silence the flag package: usage is printed for --help only, and a
	// flag error is returned, not printed, so it is reported once.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	raw := registerRaw(fs, table)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, flag.ErrHelp
		}
		return nil, fmt.Errorf("%w (see wharf serve --help)", err)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q: wharf serve takes only flags (see --help)", fs.Arg(0))
	}
	given := map[string]string{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = raw[f.Name].value })
	return given, nil
}

// loader accumulates one Load: the config being built, which layer last set
// each field (for messages), and every problem so far.
type loader struct {
	cfg    *Config
	from   map[string]string // field path → "wharf.yaml:7", "WHARF_X" or "--x"
	errs   []error
	lookup func(string) (string, bool) // the environment, for AWS's credential variables
}

func (l *loader) fail(err error) { l.errs = append(l.errs, err) }

// set applies an environment or flag value; source names it in errors.
func (l *loader) set(b binding, v, source string) {
	if err := setValue(b.field(l.cfg), v); err != nil {
		l.fail(fmt.Errorf("%s: %w", source, err))
		return
	}
	l.from[b.Path] = source
}

// resolve fills in what depends on the final, valid values: the password
// from its file, the officialLibrary default from the upstream host, and
// the S3 store's secret key from its file or AWS's variables.
func (l *loader) resolve() {
	l.resolveRegistry(&l.cfg.Upstream.Registry, "upstream")
	l.resolveUpstreams()
	l.resolveS3()
	l.resolveCluster()
}

// rawFlag records a flag's text for parsing after flag.Parse, so a bad
// value is reported with every other problem instead of stopping the parse,
// and by the same parser the file and environment use.
type rawFlag struct {
	value  string
	isBool bool
	isList bool // repeatable: values accumulate, comma-separated
}

// registerRaw adds a rawFlag to fs for each setting in table, by flag name.
func registerRaw(fs *flag.FlagSet, table []binding) map[string]*rawFlag {
	raw := make(map[string]*rawFlag, len(table))
	for _, b := range table {
		raw[b.Flag] = newRawFlag(b)
		fs.Var(raw[b.Flag], b.Flag, b.Help)
	}
	return raw
}

func newRawFlag(b binding) *rawFlag {
	r := &rawFlag{}
	if b.field != nil {
		_, r.isBool = b.field(&Config{}).(**bool) // --x alone means --x=true
		_, r.isList = b.field(&Config{}).(*[]NamedUpstream)
		if _, ok := b.field(&Config{}).(*[]string); ok {
			r.isList = true
		}
	}
	return r
}

func (r *rawFlag) String() string { return r.value }
func (r *rawFlag) Set(s string) error {
	if r.isList && r.value != "" && s != "" {
		s = r.value + "," + s
	}
	r.value = s
	return nil
}
func (r *rawFlag) IsBoolFlag() bool { return r.isBool }
