package bench

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
)

// OpCount counts one kind of storm operation.
type OpCount struct {
	Done   int64 `json:"done"`
	Failed int64 `json:"failed"`
}

// StormResult is what a storm saw: the load figures of any run, the
// operations by kind, and every request's outcome by class. Its JSON form
// is what `wharf bench storm --json` prints.
type StormResult struct {
	*Result
	// OpsByKind counts pull, push and delete operations.
	OpsByKind map[string]OpCount `json:"ops_by_kind"`
	// Outcomes counts requests by class (outcome.go); OutcomeDetails by
	// class and what distinguishes them: the status and v2 code of an
	// error ("502 UNAVAILABLE"), the request kind of the others.
	Outcomes       map[string]int64 `json:"outcomes"`
	OutcomeDetails map[string]int64 `json:"outcome_details"`
	// Unclean is the number of requests in unclean classes; the storm
	// fails when it is not 0. UncleanExamples keeps the first message of
	// each unclean class.
	Unclean         int64             `json:"unclean"`
	UncleanExamples map[string]string `json:"unclean_examples,omitempty"`
}

func mergeStorm(r *Result, stormers []*stormer) *StormResult {
	all := newTally()
	ops := map[string]OpCount{}
	for _, s := range stormers {
		all.add(s.puller.tally)
		for k, c := range s.ops {
			sum := ops[k]
			sum.Done += c.Done
			sum.Failed += c.Failed
			ops[k] = sum
		}
	}
	sr := &StormResult{Result: r, OpsByKind: ops, Outcomes: all.classes, OutcomeDetails: all.details, UncleanExamples: all.examples}
	for class, n := range all.classes {
		if !Clean(class) {
			sr.Unclean += n
		}
	}
	return sr
}

// WriteText writes the run's figures, then the operations by kind and
// the outcomes by class, unclean ones marked.
func (r *StormResult) WriteText(w io.Writer) error {
	if err := r.Result.WriteText(w); err != nil {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "  %-9s\n", "by kind")
	for _, k := range slices.Sorted(maps.Keys(r.OpsByKind)) {
		fmt.Fprintf(&b, "    %-10s %8d done %8d failed\n", k, r.OpsByKind[k].Done, r.OpsByKind[k].Failed)
	}
	fmt.Fprintf(&b, "  %-9s %d unclean\n", "outcomes", r.Unclean)
	for _, class := range slices.Sorted(maps.Keys(r.Outcomes)) {
		mark := ""
		if !Clean(class) {
			mark = "  UNCLEAN"
		}
		fmt.Fprintf(&b, "    %-12s %8d%s\n", class, r.Outcomes[class], mark)
		for _, d := range slices.Sorted(maps.Keys(r.OutcomeDetails)) {
			if rest, ok := strings.CutPrefix(d, class+" "); ok {
				fmt.Fprintf(&b, "      %-24s %8d\n", rest, r.OutcomeDetails[d])
			}
		}
		if ex, ok := r.UncleanExamples[class]; ok {
			fmt.Fprintf(&b, "      e.g. %s\n", ex)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
