package config

import (
	"flag"
	"fmt"
	"io"
)

// Flags are serve's settings registered on another command's flag set, so
// that the store commands (warm, export, import, verify, gc, du) take
// exactly serve's configuration: the same file, WHARF_* variables and
// flags, read by the same Load. A setting that means nothing to a command
// (--listen for export) is accepted and has no effect there, so one
// command line or config file serves every command.
type Flags struct {
	fs  *flag.FlagSet
	raw map[string]*rawFlag
}

// RegisterFlags adds every setting's flag to fs.
func RegisterFlags(fs *flag.FlagSet) *Flags {
	return &Flags{fs: fs, raw: registerRaw(fs, bindings())}
}

// Args are the settings' flags given on fs's command line, as Load's
// LoadOptions.Args (call after fs.Parse).
func (f *Flags) Args() []string {
	var args []string
	f.fs.Visit(func(fl *flag.Flag) {
		if r, ok := f.raw[fl.Name]; ok {
			args = append(args, "--"+fl.Name+"="+r.value)
		}
	})
	return args
}

// Load is LoadWith for the settings given on fs.
func (f *Flags) Load(lookupEnv func(string) (string, bool), output io.Writer) (Config, error) {
	return LoadWith(LoadOptions{Args: f.Args(), LookupEnv: lookupEnv, Output: output})
}

// PrintDefaults prints the command's own flags as fs.PrintDefaults does,
// and one line for serve's settings instead of all of them.
func (f *Flags) PrintDefaults(w io.Writer) {
	own := flag.NewFlagSet(f.fs.Name(), flag.ContinueOnError)
	own.SetOutput(w)
	f.fs.VisitAll(func(fl *flag.Flag) {
		if _, serves := f.raw[fl.Name]; !serves {
			own.Var(fl.Value, fl.Name, fl.Usage)
			own.Lookup(fl.Name).DefValue = fl.DefValue
		}
	})
	own.PrintDefaults()
	fmt.Fprint(w, "  and every setting of wharf serve, from its config file, WHARF_* variables or flags\n"+
		"  (--config, --data, --upstream, --upstreams, …; see wharf serve --help): give the ones serve is given\n")
}
