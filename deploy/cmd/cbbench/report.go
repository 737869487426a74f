package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"text/tabwriter"
	"time"
)

// original are the original system's figures (seed-reference §4.10-F).
const original = "original (Rust, NATS backend): ~2 s per read by id or place, ~5 s per workflow listing, " +
	"≥ 100 ms per create or transition (50 ms sleeps per publish)"

func printTable(w io.Writer, results []Result, notes []string) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "operation\tclients\tops/s\tp50 µs\tp99 µs\terrors\tvs baseline\tratio\t")
	for _, r := range results {
		ratio := ""
		if r.Baseline != "" {
			ratio = fmt.Sprintf("%.2f× (%s)", r.Ratio, r.Note)
		}
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%.0f\t%.0f\t%d\t%s\t%s\t\n", r.Operation, r.Clients, r.PerSecond, r.P50, r.P99, r.Errors, r.Baseline, ratio)
	}
	_ = tw.Flush()
	for _, n := range append(notes, original) {
		fmt.Fprintln(w, "*", n)
	}
}

func writeJSON(path string, results []Result, notes []string) error {
	b, err := json.MarshalIndent(map[string]any{
		"time": time.Now().UTC(), "goos": runtime.GOOS, "goarch": runtime.GOARCH, "cpus": runtime.NumCPU(),
		"results": results, "notes": notes, "original": original,
	}, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}
