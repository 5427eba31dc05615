package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"
)

// record is everything the report is written from. It is saved as
// <work>/run.json, so that `harness --render run.json` can write the report
// again (after a change to its layout) without measuring again.
type record struct {
	Params   params
	Command  string
	Rev      string // git describe of the checkout
	Started  time.Time
	Took     time.Duration
	AppBytes int64 // what one pull of the multi-layer image moves
	BigBytes int64
	WANBytes int64 // what one pull of the WAN image moves
	Samples  []sample
	Profiles []profile
}

func newRecord(p params, command string) record {
	rev, _ := exec.Command("git", "describe", "--always", "--dirty").Output()
	return record{Params: p, Command: command, Rev: strings.TrimSpace(string(rev)), Started: time.Now().UTC()}
}

func (r *record) save(file string) error {
	b, err := json.MarshalIndent(r, "", " ")
	if err != nil {
		return err
	}
	return os.WriteFile(file, b, 0o644)
}

func loadRecord(file string) (record, error) {
	var r record
	b, err := os.ReadFile(file)
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("%s: %w", file, err)
	}
	return r, nil
}
