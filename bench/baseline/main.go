package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/opencontainers/go-digest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "baseline:", err)
		os.Exit(1)
	}
}

// manifestFlags collects repeated --manifest ref=file flags.
type manifestFlags map[string]string

func (m manifestFlags) String() string { return fmt.Sprint(map[string]string(m)) }
func (m manifestFlags) Set(s string) error {
	ref, file, ok := strings.Cut(s, "=")
	if !ok || ref == "" || file == "" {
		return fmt.Errorf("%q: want ref=file", s)
	}
	m[ref] = file
	return nil
}

// manifest is one manifest's bytes and headers, ready to write.
type manifest struct {
	body        []byte
	contentType string
	digest      string
	length      string
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("baseline", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "address to serve on")
	blobs := fs.String("blobs", "", "directory of blob files: <dir>/sha256/<2 hex>/<hex>")
	files := manifestFlags{}
	fs.Var(files, "manifest", "ref=file: serve file's bytes for /manifests/<ref> (repeatable; ref is a tag or a digest)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	manifests := map[string]*manifest{}
	for ref, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		var head struct {
			MediaType string `json:"mediaType"`
		}
		if err := json.Unmarshal(b, &head); err != nil || head.MediaType == "" {
			return fmt.Errorf("%s: no mediaType in the manifest", file)
		}
		d := digest.FromBytes(b).String()
		m := &manifest{body: b, contentType: head.MediaType, digest: d, length: strconv.Itoa(len(b))}
		manifests[ref], manifests[d] = m, m
	}
	srv := &http.Server{Addr: *listen, Handler: handler(*blobs, manifests), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	fmt.Printf("baseline on %s: blobs from %s, %d manifests\n", *listen, *blobs, len(files))
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func handler(blobs string, manifests map[string]*manifest) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		if i := strings.LastIndex(p, "/manifests/"); i >= 0 {
			m := manifests[p[i+len("/manifests/"):]]
			if m == nil {
				http.NotFound(w, r)
				return
			}
			h := w.Header()
			h["Content-Type"] = []string{m.contentType}
			h["Docker-Content-Digest"] = []string{m.digest}
			h["Content-Length"] = []string{m.length}
			w.Write(m.body)
			return
		}
		if i := strings.LastIndex(p, "/blobs/"); i >= 0 {
			d, err := digest.Parse(p[i+len("/blobs/"):])
			if err != nil {
				http.NotFound(w, r)
				return
			}
			enc := d.Encoded()
			f, err := os.Open(filepath.Join(blobs, d.Algorithm().String(), enc[:2], enc))
			if err != nil {
				http.NotFound(w, r)
				return
			}
			defer f.Close()
			fi, err := f.Stat()
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			w.Header().Set("Content-Type", "application/octet-stream")
			http.ServeContent(w, r, "", fi.ModTime(), f)
			return
		}
		if p == "/v2/" || p == "/v2" {
			w.Write([]byte("{}"))
			return
		}
		http.NotFound(w, r)
	})
}
