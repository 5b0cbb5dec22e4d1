package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// A row of the comparison table: a figure taken from the runs with a given
// label, medians per server, and the target for pushd/Nchan.
type row struct {
	title string
	label string
	get   func(*Result) (float64, bool)
	unit  string
	// want says how the ratio pushd/Nchan is judged: "<=0.8", ">=1.2",
	// "zero" (pushd's figure must be 0) or "" (no target).
	want string
}

func mem(f func(*MemResult) float64) func(*Result) (float64, bool) {
	return func(r *Result) (float64, bool) {
		if r.Mem == nil {
			return 0, false
		}
		return f(r.Mem) / 1024, true
	}
}

var rows = []row{
	{"idle memory per WebSocket subscriber (PSS)", "idle-ws", mem(func(m *MemResult) float64 { return m.PSSPerSub }), "KiB", "<=0.8"},
	{"idle memory per WebSocket subscriber (RSS)", "idle-ws", mem(func(m *MemResult) float64 { return m.RSSPerSub }), "KiB", ""},
	{"idle memory per long-poll subscriber (PSS)", "idle-lp", mem(func(m *MemResult) float64 { return m.PSSPerSub }), "KiB", "<=0.8"},
	{"idle memory per long-poll subscriber (RSS)", "idle-lp", mem(func(m *MemResult) float64 { return m.RSSPerSub }), "KiB", ""},
	{"one message to all long-poll subscribers, p99", "idle-lp", func(r *Result) (float64, bool) { return r.Latency.P99, r.Latency.N > 0 }, "ms", ""},
	{"one message to all WebSocket subscribers, p99", "idle-ws", func(r *Result) (float64, bool) { return r.Latency.P99, r.Latency.N > 0 }, "ms", "<=1.0"},
	{"one message to all WebSocket subscribers, max", "idle-ws", func(r *Result) (float64, bool) { return r.Latency.Max, r.Latency.N > 0 }, "ms", ""},
	{"WebSocket fan-out, back to back: deliveries/s", "fanout-ws", func(r *Result) (float64, bool) { return r.DeliveriesPerS, r.Delivered > 0 }, "/s", ">=1.2"},
	{"WebSocket fan-out, back to back: p99", "fanout-ws", func(r *Result) (float64, bool) { return r.Latency.P99, r.Latency.N > 0 }, "ms", "<=1.0"},
	{"WebSocket fan-out: server CPU per delivery", "fanout-ws", func(r *Result) (float64, bool) { return r.ServerCPUUsOp, r.ServerCPUUsOp > 0 }, "µs", "<=0.8"},
	{"WebSocket fan-out: lost", "fanout-ws", func(r *Result) (float64, bool) { return r.LostPct, r.Expected > 0 }, "%", ""},
	{"WebSocket fan-out: load tool CPU per delivery", "fanout-ws", func(r *Result) (float64, bool) {
		return r.ClientCPUS * 1e6 / float64(r.Delivered), r.Delivered > 0
	}, "µs", ""},
	{"HTTP publishes/s (50 publishers)", "pubrate", func(r *Result) (float64, bool) { return r.PublishesPerS, r.Published > 0 }, "/s", ">=1.0"},
	{"HTTP publish: server CPU per publish", "pubrate", func(r *Result) (float64, bool) { return r.ServerCPUUsOp, r.ServerCPUUsOp > 0 }, "µs", "<=0.8"},
	{"HTTP publish: p99 round trip", "pubrate", func(r *Result) (float64, bool) { return r.Latency.P99, r.Latency.N > 0 }, "ms", ""},
	{"long-poll at 10 msgs/s, buffer 20: lost", "lp10", func(r *Result) (float64, bool) { return r.LostPct, r.Expected > 0 }, "%", "zero"},
	{"long-poll at 10 msgs/s: p99", "lp10", func(r *Result) (float64, bool) { return r.Latency.P99, r.Latency.N > 0 }, "ms", ""},
	{"subscribers held by one server (connected)", "hold", func(r *Result) (float64, bool) { return float64(r.Connected), true }, "", ""},
	{"subscribers held: errors (connect+later+lost msgs)", "hold", func(r *Result) (float64, bool) {
		return float64(r.ConnectErrors+r.SubErrors) + float64(r.Lost), true
	}, "", "zero"},
}

// reportMain prints the comparison table from JSON lines (files, or stdin).
func reportMain(files []string) error {
	var rs []*Result
	read := func(r io.Reader) error {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if !strings.HasPrefix(line, "{") {
				continue
			}
			var res Result
			if err := json.Unmarshal([]byte(line), &res); err != nil {
				return err
			}
			rs = append(rs, &res)
		}
		return sc.Err()
	}
	if len(files) == 0 {
		if err := read(os.Stdin); err != nil {
			return err
		}
	}
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			return err
		}
		err = read(fh)
		fh.Close()
		if err != nil {
			return err
		}
	}
	fmt.Print(table(rs))
	return nil
}

func median(v []float64) float64 {
	sort.Float64s(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

func table(rs []*Result) string {
	var b strings.Builder
	ns := map[string]int{} // label -> N, for the titles
	for _, r := range rs {
		ns[r.Label] = max(ns[r.Label], r.N)
	}
	fmt.Fprintf(&b, "| figure (median of runs) | pushd | Nchan | pushd/Nchan | target | met |\n")
	fmt.Fprintf(&b, "|---|---:|---:|---:|---|---|\n")
	for _, rw := range rows {
		vals := map[string][]float64{}
		for _, r := range rs {
			if r.Label != rw.label {
				continue
			}
			if v, ok := rw.get(r); ok {
				vals[r.Server] = append(vals[r.Server], v)
			}
		}
		p, nc := vals["pushd"], vals["nchan"]
		if len(p) == 0 && len(nc) == 0 {
			continue
		}
		cell := func(v []float64) (string, float64) {
			if len(v) == 0 {
				return "n/a", 0
			}
			m := median(v)
			return fmt.Sprintf("%s %s (%d)", num(m), rw.unit, len(v)), m
		}
		ps, pm := cell(p)
		cs, cm := cell(nc)
		ratio, met := "", ""
		if len(p) > 0 && len(nc) > 0 && cm != 0 {
			ratio = fmt.Sprintf("%.2f", pm/cm)
		}
		switch {
		case rw.want == "zero" && len(p) > 0:
			met = yesNo(pm == 0)
		case rw.want != "" && ratio != "":
			var t float64
			fmt.Sscanf(rw.want[2:], "%g", &t)
			if rw.want[0] == '<' {
				met = yesNo(pm/cm <= t)
			} else {
				met = yesNo(pm/cm >= t)
			}
		}
		want := rw.want
		if want == "zero" {
			want = "pushd 0"
		} else if want != "" {
			want = "ratio " + want
		}
		title := rw.title
		if n := ns[rw.label]; n > 0 {
			title = fmt.Sprintf("%s [N=%d]", title, n)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", title, ps, cs, ratio, want, met)
	}
	return b.String()
}

func yesNo(ok bool) string {
	if ok {
		return "yes"
	}
	return "NO"
}

func num(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v == float64(int64(v)):
		return fmt.Sprintf("%d", int64(v))
	case v >= 1000:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.3g", v)
	}
}
