// Command textparse measures the throughput of Prometheus's own exposition parsers
// (github.com/prometheus/prometheus/model/textparse) on exposition bodies given as files, as
// a peer for podgate's parser benchmark (benches/parser.rs).
//
// Usage:
//
//	textparse [-time 1s] [-json] FILE...
//
// A file named *.om or *.openmetrics is read with the OpenMetrics 1.0 parser, *.pb with the
// protobuf parser (delimited MetricFamily messages; native histograms read and classic
// series kept, as podgate reads them), any other file with the text format (0.0.4) parser.
// Each file is parsed repeatedly for at least -time in
// each of two modes:
//
//   - series: Next and Series() for every sample, which is what Prometheus's scrape loop does
//     for a series it already has cached (it never decodes the labels);
//   - labels: Next, Series() and Labels() into a reused labels.Labels, which is what a
//     consumer that needs the label set does (and what podgate's parser always provides).
//
// A file the parser refuses is reported on stderr and skipped. With -json every measurement
// is one JSON object per line on stdout; otherwise a table.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/textparse"
)

// parserName identifies this peer in the output.
const parserName = "prometheus-go-textparse"

// result is one measurement; the field names are shared with benches/parser.rs.
type result struct {
	Parser      string  `json:"parser"`
	Mode        string  `json:"mode"`
	File        string  `json:"file"`
	Bytes       int     `json:"bytes"`
	Samples     int     `json:"samples"`
	MBPerS      float64 `json:"mb_per_s"`
	SamplesPerS float64 `json:"samples_per_s"`
}

// mode says how much of each sample a pass reads.
type mode struct {
	name   string
	labels bool
}

var modes = []mode{{"series", false}, {"labels", true}}

// sink receives a checksum of everything a pass read; a store to a package variable is never
// optimised away, so neither is the work behind it.
var sink float64

// format names the exposition format of a file, by its name as benches/parser.rs picks it.
type format string

const (
	formatText        format = "text"
	formatOpenMetrics format = "OpenMetrics"
	formatProtobuf    format = "protobuf"
)

func formatOf(path string) format {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".om", ".openmetrics":
		return formatOpenMetrics
	case ".pb":
		return formatProtobuf
	}
	return formatText
}

// pass parses body once; it returns the number of samples and a checksum of what it read.
// st and lset are reused across passes, as a scrape loop reuses them across scrapes.
func pass(body []byte, f format, withLabels bool, st *labels.SymbolTable, lset *labels.Labels) (int, float64, error) {
	var p textparse.Parser
	switch f {
	case formatOpenMetrics:
		// No options: `_created` series are samples, as Prometheus ingests them by default.
		p = textparse.NewOpenMetricsParser(body, st)
	case formatProtobuf:
		// Native histograms read, classic series of histograms exposed both ways kept, no
		// conversion, no type and unit labels: what podgate's HistogramOptions::PODGATE does.
		p = textparse.NewProtobufParser(body, false, true, false, false, st)
	default:
		p = textparse.NewPromParser(body, st, false)
	}
	samples := 0
	sum := 0.0
	for {
		entry, err := p.Next()
		if errors.Is(err, io.EOF) {
			return samples, sum, nil
		}
		if err != nil {
			return samples, sum, err
		}
		switch entry {
		case textparse.EntrySeries:
			series, ts, value := p.Series()
			samples++
			sum += value + float64(len(series))
			if ts != nil {
				sum += float64(*ts)
			}
			if withLabels {
				p.Labels(lset)
				lset.Range(func(l labels.Label) {
					sum += float64(len(l.Name) + len(l.Value))
				})
			}
		case textparse.EntryHistogram:
			// Native histograms (protobuf and OpenMetrics 2.0 bodies): the histogram is
			// built, as the scrape loop builds it.
			series, _, h, fh := p.Histogram()
			samples++
			sum += float64(len(series))
			if h != nil {
				sum += float64(h.Count)
			}
			if fh != nil {
				sum += fh.Count
			}
			if withLabels {
				p.Labels(lset)
				lset.Range(func(l labels.Label) {
					sum += float64(len(l.Name) + len(l.Value))
				})
			}
		}
	}
}

// measure parses body for at least minTime and returns the measurement, or the parser's
// error on the first pass.
func measure(name string, body []byte, f format, m mode, minTime time.Duration) (result, error) {
	st := labels.NewSymbolTable()
	var lset labels.Labels
	samples, sum, err := pass(body, f, m.labels, st, &lset)
	if err != nil {
		return result{}, err
	}
	sink += sum
	// Warm caches and the allocator; start from a collected heap so that one file's garbage
	// is not charged to the next.
	for range 3 {
		_, sum, _ = pass(body, f, m.labels, st, &lset)
		sink += sum
	}
	runtime.GC()
	runs := 0
	start := time.Now()
	var elapsed time.Duration
	for elapsed < minTime {
		_, sum, _ = pass(body, f, m.labels, st, &lset)
		sink += sum
		runs++
		elapsed = time.Since(start)
	}
	seconds := elapsed.Seconds()
	return result{
		Parser:      parserName,
		Mode:        m.name,
		File:        name,
		Bytes:       len(body),
		Samples:     samples,
		MBPerS:      float64(len(body)) * float64(runs) / seconds / 1e6,
		SamplesPerS: float64(samples) * float64(runs) / seconds,
	}, nil
}

func main() {
	minTime := flag.Duration("time", time.Second, "minimum measuring time per file and mode")
	asJSON := flag.Bool("json", false, "print one JSON object per measurement and line")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: %s [-time 1s] [-json] FILE...\n", os.Args[0])
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 || *minTime <= 0 {
		flag.Usage()
		os.Exit(2)
	}

	enc := json.NewEncoder(os.Stdout)
	if !*asJSON {
		fmt.Printf("%-28s %-6s %9s %8s %10s %14s\n", "file", "mode", "bytes", "samples", "MB/s", "samples/s")
	}
	failed := false
	for _, path := range flag.Args() {
		body, err := os.ReadFile(path)
		if err != nil {
			fmt.Fprintf(os.Stderr, "textparse: %v\n", err)
			failed = true
			continue
		}
		name := filepath.Base(path)
		f := formatOf(path)
		for _, m := range modes {
			r, err := measure(name, body, f, m, *minTime)
			if err != nil {
				fmt.Fprintf(os.Stderr, "textparse: %s: skipped, the %s parser refuses it: %v\n", path, f, err)
				break
			}
			if *asJSON {
				if err := enc.Encode(r); err != nil {
					fmt.Fprintf(os.Stderr, "textparse: writing output: %v\n", err)
					os.Exit(1)
				}
			} else {
				fmt.Printf("%-28s %-6s %9d %8d %10.1f %14.0f\n", r.File, r.Mode, r.Bytes, r.Samples, r.MBPerS, r.SamplesPerS)
			}
		}
	}
	if failed {
		os.Exit(1)
	}
}
