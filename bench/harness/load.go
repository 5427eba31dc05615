package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// loadResult is the part of `wharf bench pull --json` the harness reads.
type loadResult struct {
	Seconds           float64           `json:"elapsed_seconds"`
	Ops               int64             `json:"ops"`
	Failed            int64             `json:"failed"`
	OpsPerSecond      float64           `json:"ops_per_second"`
	Bytes             int64             `json:"bytes"`
	BytesPerSecond    float64           `json:"bytes_per_second"`
	RequestsPerSecond float64           `json:"requests_per_second"`
	Errors            map[string]int    `json:"errors"`
	ErrorExamples     map[string]string `json:"error_examples"`

	cpu time.Duration // user+system time of the load generator
}

// load runs `wharf bench pull --json` against url, as its own process, so
// that every server is measured with the same client, which is also what
// an operator would run.
func (h *harness) load(ctx context.Context, url string, args ...string) (loadResult, error) {
	argv := append([]string{"bench", "pull", "--registry", url, "--json"}, args...)
	cmd := exec.CommandContext(ctx, filepath.Join(h.bin, "wharf"), argv...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	var r loadResult
	if cmd.ProcessState != nil {
		r.cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		return r, fmt.Errorf("wharf %s: %v: %s", strings.Join(argv, " "), runErr, stderr.String())
	}
	if r.Failed > 0 || r.Ops == 0 {
		return r, fmt.Errorf("wharf %s: %d done, %d failed: %v", strings.Join(argv, " "), r.Ops, r.Failed, r.ErrorExamples)
	}
	return r, nil
}

func getJSON(ctx context.Context, url string, v any) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}
