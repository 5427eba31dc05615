// Command s3tool stands in for MinIO's mc in TestDeployClusterCompose,
// whose MinIO image is built FROM scratch (no shell, no mc):
//
//	s3tool ready URL                         exit 0 when MinIO is ready
//	s3tool mb URL BUCKET ACCESSKEY SECRETFILE create BUCKET unless it exists
//
// mb retries for a minute while the server does not answer.
package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "s3tool:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	switch {
	case len(args) == 2 && args[0] == "ready":
		resp, err := http.Get(args[1] + "/minio/health/ready")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("not ready: %s", resp.Status)
		}
		return nil
	case len(args) == 5 && args[0] == "mb":
		u, err := url.Parse(args[1])
		if err != nil {
			return err
		}
		secret, err := os.ReadFile(args[4])
		if err != nil {
			return err
		}
		c, err := minio.New(u.Host, &minio.Options{
			Creds:  credentials.NewStaticV4(args[3], strings.TrimRight(string(secret), "\n"), ""),
			Secure: u.Scheme == "https",
		})
		if err != nil {
			return err
		}
		for {
			err := c.MakeBucket(ctx, args[2], minio.MakeBucketOptions{})
			var resp minio.ErrorResponse
			if err == nil || errors.As(err, &resp) && resp.Code == "BucketAlreadyOwnedByYou" {
				return nil
			}
			if ctx.Err() != nil {
				return fmt.Errorf("make bucket %s: %w", args[2], err)
			}
			time.Sleep(time.Second)
		}
	}
	return errors.New("usage: s3tool ready URL | s3tool mb URL BUCKET ACCESSKEY SECRETFILE")
}
