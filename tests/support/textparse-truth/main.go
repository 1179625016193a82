// Command textparse-truth prints what Prometheus's own scrape parsing
// (github.com/prometheus/prometheus/model/textparse, the version pinned in go.mod) makes of
// exposition bodies: the samples a scrape would ingest from each body, or the error that
// fails the scrape. podgate's tests compare its parser with this ground truth.
//
// Usage:
//
//	textparse-truth -format openmetrics|text FILE... > truth.json
//
// Each body goes through the same steps as one scrape in Prometheus's scrape loop
// (scrape/scrape.go, scrapeLoopAppender.append), with the scrape defaults and
// honor_labels: true:
//
//   - textparse.New with the format's Content-Type and the default parser options (`_created`
//     lines are samples; no native histograms; no type and unit labels);
//   - an empty body is an empty scrape (no samples, no error);
//   - every entry up to the first error; for each sample Labels(), then the scrape loop's
//     label handling: labels with an empty value are dropped (labels.Builder), a label set
//     without a metric name fails the scrape, as does one that is not valid under UTF-8
//     name validation or that holds a label name twice (the TSDB refuses the series and the
//     scrape fails).
//
// What storage does afterwards (a second sample of a series in one scrape, out-of-order or
// out-of-bounds timestamps) is not applied: it depends on what the server already holds.
// The output is one JSON array with an object per file, in argument order:
//
//	{"file": "...", "accepted": true, "error": null, "samples": [SAMPLE...]}
//	{"file": "...", "accepted": false, "error": "...", "samples": [SAMPLE...]}
//
// where `samples` holds, for a refused body, the samples read before the error (Prometheus
// stores none of them). A SAMPLE is {"name", "labels": {...}, "value", "timestamp_ms",
// "exemplar"}: the value as the Prometheus HTTP API prints it ("NaN", "+Inf", "-Inf" or the
// shortest decimal), timestamp_ms null when the body gave none, exemplar null or
// {"labels", "value", "timestamp_ms"}.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/textparse"
)

// contentTypes are what the formats' targets answer with (client_golang's spelling).
var contentTypes = map[string]string{
	"openmetrics": "application/openmetrics-text; version=1.0.0; charset=utf-8",
	"text":        "text/plain; version=0.0.4; charset=utf-8",
}

type exemplarOut struct {
	Labels      map[string]string `json:"labels"`
	Value       string            `json:"value"`
	TimestampMs *int64            `json:"timestamp_ms"`
}

type sampleOut struct {
	Name        string            `json:"name"`
	Labels      map[string]string `json:"labels"`
	Value       string            `json:"value"`
	TimestampMs *int64            `json:"timestamp_ms"`
	Exemplar    *exemplarOut      `json:"exemplar"`
}

type result struct {
	File     string      `json:"file"`
	Accepted bool        `json:"accepted"`
	Error    *string     `json:"error"`
	Samples  []sampleOut `json:"samples"`
}

// apiValue prints v as the Prometheus HTTP API does.
func apiValue(v float64) string {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

func labelMap(ls labels.Labels) map[string]string {
	m := map[string]string{}
	ls.Range(func(l labels.Label) {
		if l.Name != model.MetricNameLabel {
			m[l.Name] = l.Value
		}
	})
	return m
}

// scrape runs one body through the parser and the scrape loop's label checks.
func scrape(body []byte, contentType string) ([]sampleOut, error) {
	samples := []sampleOut{}
	if len(body) == 0 {
		return samples, nil
	}
	p, err := textparse.New(body, contentType, labels.NewSymbolTable(), textparse.ParserOptions{
		IgnoreNativeHistograms: true,
	})
	if p == nil {
		return samples, fmt.Errorf("no parser for %q: %w", contentType, err)
	}
	var (
		lset labels.Labels
		e    exemplar.Exemplar
	)
	for {
		entry, err := p.Next()
		if errors.Is(err, io.EOF) {
			return samples, nil
		}
		if err != nil {
			return samples, err
		}
		if entry != textparse.EntrySeries {
			// Metadata and comments; no native histograms in these formats.
			continue
		}
		_, ts, v := p.Series()
		p.Labels(&lset)
		// mutateSampleLabels with honor_labels and no target labels: a labels.Builder,
		// which drops every label whose value is empty.
		lset = labels.NewBuilder(lset).Labels()
		if !lset.Has(model.MetricNameLabel) {
			return samples, errors.New("missing metric name (__name__ label)")
		}
		if !lset.IsValid(model.UTF8Validation) {
			return samples, fmt.Errorf("invalid metric name or label names: %s", lset.String())
		}
		if name, dup := lset.HasDuplicateLabelNames(); dup {
			return samples, fmt.Errorf("label name %q is not unique: invalid sample", name)
		}
		s := sampleOut{
			Name:   lset.Get(model.MetricNameLabel),
			Labels: labelMap(lset),
			Value:  apiValue(v),
		}
		if ts != nil {
			t := *ts
			s.TimestampMs = &t
		}
		if p.Exemplar(&e) {
			x := &exemplarOut{Labels: labelMap(e.Labels), Value: apiValue(e.Value)}
			if e.HasTs {
				t := e.Ts
				x.TimestampMs = &t
			}
			s.Exemplar = x
			e = exemplar.Exemplar{}
		}
		samples = append(samples, s)
	}
}

func main() {
	format := flag.String("format", "openmetrics", "the format of every FILE: openmetrics or text")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: %s -format openmetrics|text FILE...\n", os.Args[0])
		flag.PrintDefaults()
	}
	flag.Parse()
	contentType, ok := contentTypes[*format]
	if !ok || flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	results := make([]result, 0, flag.NArg())
	for _, path := range flag.Args() {
		body, err := os.ReadFile(path)
		if err != nil {
			fmt.Fprintf(os.Stderr, "textparse-truth: %v\n", err)
			os.Exit(1)
		}
		samples, err := scrape(body, contentType)
		r := result{File: path, Accepted: err == nil, Samples: samples}
		if err != nil {
			msg := err.Error()
			r.Error = &msg
		}
		results = append(results, r)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", " ")
	if err := enc.Encode(results); err != nil {
		fmt.Fprintf(os.Stderr, "textparse-truth: writing output: %v\n", err)
		os.Exit(1)
	}
}
