package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Result is the JSON line printed for one run.
type Result struct {
	Mode      string `json:"mode"`
	Transport string `json:"transport,omitempty"`
	WSReader  string `json:"ws_reader,omitempty"`
	Server    string `json:"server,omitempty"`
	Label     string `json:"label,omitempty"`
	Start     string `json:"start"`
	Sub       string `json:"sub,omitempty"`
	Pub       string `json:"pub"`

	N             int     `json:"n,omitempty"`
	Channels      int     `json:"channels"`
	Workers       int     `json:"workers,omitempty"`
	Connected     int     `json:"connected"`
	ConnectErrors int     `json:"connect_errors"`
	ConnectS      float64 `json:"connect_s,omitempty"`
	ServerSubs    int     `json:"server_subscribers,omitempty"` // from channel info; -1 unknown

	Mem *MemResult `json:"mem,omitempty"`

	Messages      int     `json:"messages,omitempty"`
	Rate          float64 `json:"rate,omitempty"` // 0: back to back
	Published     int     `json:"published"`
	PublishErrors int     `json:"publish_errors"`

	Expected       uint64  `json:"expected,omitempty"`
	Delivered      uint64  `json:"delivered,omitempty"`
	Lost           uint64  `json:"lost,omitempty"`
	LostPct        float64 `json:"lost_pct"`
	Dup            uint64  `json:"dup,omitempty"`
	Bad            uint64  `json:"bad,omitempty"`
	SubErrors      int     `json:"sub_errors"`
	DeliverS       float64 `json:"deliver_s,omitempty"` // first publish to last delivery
	DeliveriesPerS float64 `json:"deliveries_per_s,omitempty"`
	Latency        Latency `json:"latency"` // publish to delivery, or publish round trip (pubrate)

	PublishesPerS float64 `json:"publishes_per_s,omitempty"`

	ServerCPUS    float64  `json:"server_cpu_s"`
	ServerCPUUsOp float64  `json:"server_cpu_us_per_op,omitempty"` // per delivery or per publish
	ClientCPUS    float64  `json:"client_cpu_s"`
	MeasureS      float64  `json:"measure_s"` // wall time of the measured phase
	ElapsedS      float64  `json:"elapsed_s"`
	TimedOut      bool     `json:"timed_out,omitempty"`
	Errors        []string `json:"errors,omitempty"`
}

// MemResult is the server's memory before and after connecting.
type MemResult struct {
	RSSBefore int64   `json:"rss_before"`
	RSSAfter  int64   `json:"rss_after"`
	PSSBefore int64   `json:"pss_before"`
	PSSAfter  int64   `json:"pss_after"`
	RSSPerSub float64 `json:"rss_per_sub"`
	PSSPerSub float64 `json:"pss_per_sub"`
}

func (r *Result) err(format string, a ...any) {
	if len(r.Errors) < 10 {
		r.Errors = append(r.Errors, fmt.Sprintf(format, a...))
	}
}

// runSubscribers is idle and fanout: connect N subscribers, publish, tally.
func runSubscribers(ctx context.Context, cfg *config, res *Result) {
	deadline, _ := ctx.Deadline()
	base := workerConfig{Transport: cfg.transport, WSReader: cfg.wsReader, Sub: cfg.sub, ChannelPrefix: cfg.prefix,
		Channels: cfg.channels, Messages: cfg.messages, Src: cfg.src, DialConcurrency: cfg.dialConc,
		Deadline: deadline, Drain: Duration(cfg.drain)}
	pub := &publisher{t: cfg.pubT, d: cfg.dialer}
	defer pub.close()

	var mem0 memory
	if cfg.procs != nil {
		var err error
		if mem0, err = cfg.procs.memory(); err != nil {
			res.err("reading server memory: %v", err)
		}
	}
	hs, err := startWorkers(base, cfg.n, cfg.perWorker)
	if err != nil {
		res.err("%v", err)
		return
	}
	res.Workers = len(hs)
	defer func() {
		for _, h := range hs {
			h.kill()
		}
	}()
	readies := make([]readyMsg, len(hs))
	errs := make([]error, len(hs))
	var wg sync.WaitGroup
	for i, h := range hs {
		wg.Add(1)
		go func() { defer wg.Done(); readies[i], errs[i] = h.ready() }()
	}
	wg.Wait()
	for i := range hs {
		if errs[i] != nil {
			res.err("%v", errs[i])
		}
		res.Connected += readies[i].Connected
		res.ConnectErrors += readies[i].Errors
		res.ConnectS = max(res.ConnectS, readies[i].ConnectS)
		if readies[i].FirstError != "" {
			res.err("connect: %s", readies[i].FirstError)
		}
	}

	// Wait until the server counts the subscribers (long-poll requests in
	// flight are not yet held), then let it settle before measuring.
	res.ServerSubs = -1
	if cfg.channels <= 16 {
		wait, cancel := context.WithTimeout(ctx, cfg.settleMax)
		defer cancel()
		for {
			total := 0
			for c := 0; c < cfg.channels && total >= 0; c++ {
				n := pub.subscribers(ctx, channelName(cfg.prefix, c))
				if n < 0 {
					total = -1
				} else {
					total += n
				}
			}
			res.ServerSubs = total
			if total < 0 || total >= res.Connected || wait.Err() != nil {
				break
			}
			select {
			case <-wait.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	select {
	case <-ctx.Done():
	case <-time.After(cfg.settle):
	}
	if cfg.procs != nil {
		if mem1, err := cfg.procs.memory(); err == nil && res.Connected > 0 {
			res.Mem = &MemResult{RSSBefore: mem0.RSS, RSSAfter: mem1.RSS, PSSBefore: mem0.PSS, PSSAfter: mem1.PSS,
				RSSPerSub: float64(mem1.RSS-mem0.RSS) / float64(res.Connected),
				PSSPerSub: float64(mem1.PSS-mem0.PSS) / float64(res.Connected)}
		}
	}

	if res.Connected == 0 {
		res.err("no subscriber connected; nothing published")
		return
	}

	// The measured phase.
	cpuS0, _ := cfg.procs.cpu()
	cpuC0 := selfCPU()
	t0 := time.Now()
	res.Rate = cfg.rate
	for i := 0; i < cfg.messages && ctx.Err() == nil; i++ {
		if cfg.rate > 0 {
			at := t0.Add(time.Duration(float64(i) / cfg.rate * float64(time.Second)))
			if d := time.Until(at); d > 0 {
				select {
				case <-ctx.Done():
				case <-time.After(d):
				}
			}
		}
		for c := 0; c < cfg.channels && ctx.Err() == nil; c++ {
			if _, err := pub.publish(ctx, channelName(cfg.prefix, c), i, cfg.size); err != nil {
				res.PublishErrors++
				res.err("publish: %v", err)
			} else {
				res.Published++
			}
		}
	}
	results := make([]resultMsg, len(hs))
	for i, h := range hs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = h.finish(finishMsg{Published: res.Published})
		}()
	}
	wg.Wait()
	res.MeasureS = time.Since(t0).Seconds()
	cpuS1, _ := cfg.procs.cpu()
	res.ServerCPUS = (cpuS1 - cpuS0).Seconds()
	res.ClientCPUS = (selfCPU() - cpuC0).Seconds()

	var h histogram
	var last int64
	var distinct uint64
	for i, r := range results {
		if errs[i] != nil {
			res.err("%v", errs[i])
			continue
		}
		h.merge(r.Hist)
		res.Delivered += r.Delivered
		res.Dup += r.Dup
		res.Bad += r.Bad
		res.SubErrors += r.Errors
		distinct += r.Distinct
		last = max(last, r.LastNano)
		if r.Remote {
			res.ClientCPUS += r.CPU
		}
		if r.FirstError != "" {
			res.err("subscriber: %s", r.FirstError)
		}
	}
	res.Latency = h.summary()
	res.Expected = uint64(res.Connected) * uint64(cfg.messages)
	if res.Expected > distinct {
		res.Lost = res.Expected - distinct
		res.LostPct = 100 * float64(res.Lost) / float64(res.Expected)
	}
	if last > t0.UnixNano() {
		res.DeliverS = float64(last-t0.UnixNano()) / 1e9
		res.DeliveriesPerS = float64(res.Delivered) / res.DeliverS
	}
	if res.Delivered > 0 && cfg.procs != nil {
		res.ServerCPUUsOp = res.ServerCPUS * 1e6 / float64(res.Delivered)
	}
}

// runPubrate is C publishers over many channels for a duration.
func runPubrate(ctx context.Context, cfg *config, res *Result) {
	res.Messages = 0
	cpuS0, _ := cfg.procs.cpu()
	cpuC0 := selfCPU()
	t0 := time.Now()
	end, cancel := context.WithTimeout(ctx, cfg.duration)
	defer cancel()
	var h histogram
	var ok, bad atomic.Int64
	var errMu sync.Mutex
	var wg sync.WaitGroup
	for j := 0; j < cfg.conc; j++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := &publisher{t: cfg.pubT, d: cfg.dialer}
			defer p.close()
			for k := 0; end.Err() == nil; k++ {
				ch := channelName(cfg.prefix, (j+k*cfg.conc)%cfg.channels)
				s := time.Now()
				if _, err := p.publish(ctx, ch, k, cfg.size); err != nil {
					if end.Err() != nil {
						return
					}
					bad.Add(1)
					errMu.Lock()
					res.err("publish: %v", err)
					errMu.Unlock()
					if p.hc == nil { // connection failed: do not spin
						select {
						case <-end.Done():
						case <-time.After(10 * time.Millisecond):
						}
					}
					continue
				}
				h.add(time.Since(s))
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	el := time.Since(t0)
	cpuS1, _ := cfg.procs.cpu()
	res.MeasureS = el.Seconds()
	res.Published, res.PublishErrors = int(ok.Load()), int(bad.Load())
	res.PublishesPerS = float64(res.Published) / el.Seconds()
	res.Latency = h.summary()
	res.ServerCPUS = (cpuS1 - cpuS0).Seconds()
	res.ClientCPUS = (selfCPU() - cpuC0).Seconds()
	if res.Published > 0 && cfg.procs != nil {
		res.ServerCPUUsOp = res.ServerCPUS * 1e6 / float64(res.Published)
	}
}
