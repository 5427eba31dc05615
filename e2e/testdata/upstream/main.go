// Command upstream is the upstream registry of TestDeployClusterCompose,
// whose images are built FROM scratch (no registry image answers here):
// go-containerregistry's in-memory registry on ADDR, logging every
// request to stderr.
//
//	upstream ADDR
package main

import (
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: upstream ADDR")
		os.Exit(2)
	}
	srv := &http.Server{Addr: os.Args[1], Handler: registry.New(), ReadHeaderTimeout: 10 * time.Second}
	if err := srv.ListenAndServe(); err != nil {
		fmt.Fprintln(os.Stderr, "upstream:", err)
		os.Exit(1)
	}
}
