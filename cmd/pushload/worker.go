package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// workerConfig is what one worker (this process or a re-executed copy of
// it) needs to hold a share of the subscribers.
type workerConfig struct {
	Transport       string    `json:"transport"`
	WSReader        string    `json:"ws_reader,omitempty"` // goroutine or epoll (ws)
	Sub             string    `json:"sub"`
	ChannelPrefix   string    `json:"channel_prefix"`
	Channels        int       `json:"channels"`
	First           int       `json:"first"` // index of the first subscriber
	Count           int       `json:"count"`
	Messages        int       `json:"messages"` // expected per subscriber
	Src             string    `json:"src"`
	DialConcurrency int       `json:"dial_concurrency"`
	Deadline        time.Time `json:"deadline"`
	Drain           Duration  `json:"drain"`
}

// readyMsg says how the connecting went.
type readyMsg struct {
	Connected  int     `json:"connected"`
	Errors     int     `json:"errors"`
	FirstError string  `json:"first_error,omitempty"`
	ConnectS   float64 `json:"connect_s"`
}

// finishMsg tells a worker that publishing is over.
type finishMsg struct {
	Published int `json:"published"`
}

// resultMsg is a worker's tally.
type resultMsg struct {
	Delivered  uint64  `json:"delivered"`
	Distinct   uint64  `json:"distinct"`
	Dup        uint64  `json:"dup"`
	Bad        uint64  `json:"bad"`
	Errors     int     `json:"errors"` // subscribers that failed after connecting
	FirstError string  `json:"first_error,omitempty"`
	Complete   int     `json:"complete"` // subscribers that saw the last message
	LastNano   int64   `json:"last_nano"`
	Hist       sparse  `json:"hist"`
	CPU        float64 `json:"cpu_s"` // this worker's CPU from ready to result
	Remote     bool    `json:"-"`
}

// Duration is a time.Duration that travels as a string in JSON.
type Duration time.Duration

func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	*d = Duration(v)
	return err
}

// worker holds subscribers and records what they receive.
type worker struct {
	cfg    workerConfig
	sub    *target
	dialer *dialer
	ws     *http.Client // for the goroutine WebSocket reader
	wsLoop *wsLoop      // for the epoll WebSocket reader
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	subs []subscriber
	hist histogram

	delivered, dup, bad atomic.Uint64
	complete            atomic.Int64
	lastNano            atomic.Int64
	lastSeq             int
	done                chan struct{} // closed when every subscriber saw the last message
	doneOnce            sync.Once

	errMu      sync.Mutex
	errors     int
	firstError string

	cpu0 time.Duration
}

type subscriber struct {
	ch      string
	seen    []uint64 // bitmap of sequence numbers received
	gotLast bool
}

func newWorker(cfg workerConfig) (*worker, error) {
	t, err := parseTarget("-sub", cfg.Sub)
	if err != nil {
		return nil, err
	}
	srcs, err := parseSources(cfg.Src)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithDeadline(context.Background(), cfg.Deadline)
	w := &worker{cfg: cfg, sub: t, dialer: newDialer(srcs, cfg.First), ctx: ctx, cancel: cancel,
		subs: make([]subscriber, cfg.Count), lastSeq: cfg.Messages - 1, done: make(chan struct{})}
	words := (cfg.Messages + 63) / 64
	bitmaps := make([]uint64, words*cfg.Count)
	for i := range w.subs {
		w.subs[i].ch = channelName(cfg.ChannelPrefix, (cfg.First+i)%cfg.Channels)
		w.subs[i].seen = bitmaps[i*words : (i+1)*words : (i+1)*words]
	}
	switch {
	case cfg.Transport == "ws" && cfg.WSReader == wsReaderEpoll:
		if w.wsLoop, err = newWSLoop(w); err != nil {
			cancel()
			return nil, err
		}
		w.wg.Add(1)
		go w.wsLoop.run()
	case cfg.Transport == "ws":
		w.ws = &http.Client{Transport: &http.Transport{DialContext: w.dialer.DialContext, DisableCompression: true}}
	}
	return w, nil
}

func channelName(prefix string, i int) string { return fmt.Sprintf("%s%d", prefix, i) }

func (w *worker) fail(err error) {
	w.errMu.Lock()
	w.errors++
	if w.firstError == "" {
		w.firstError = err.Error()
	}
	w.errMu.Unlock()
}

// connect opens every subscriber, at most DialConcurrency at a time, and
// returns when each is connected (long-poll: its first request is sent) or
// has failed.
func (w *worker) connect() readyMsg {
	start := time.Now()
	sem := make(chan struct{}, max(1, w.cfg.DialConcurrency))
	var connected atomic.Int64
	var ready sync.WaitGroup
	var cerrs int
	var cfirst string
	var cmu sync.Mutex
	for i := range w.subs {
		select {
		case sem <- struct{}{}:
		case <-w.ctx.Done():
		}
		if w.ctx.Err() != nil {
			break
		}
		ready.Add(1)
		w.wg.Add(1)
		go func(s *subscriber) {
			defer w.wg.Done()
			var once sync.Once
			wasUp := false // read and written by this goroutine only
			up := func(err error) {
				once.Do(func() {
					if err == nil {
						wasUp = true
						connected.Add(1)
					} else {
						cmu.Lock()
						cerrs++
						if cfirst == "" {
							cfirst = err.Error()
						}
						cmu.Unlock()
					}
					<-sem
					ready.Done()
				})
			}
			var err error
			switch w.cfg.Transport {
			case "ws":
				if w.wsLoop != nil {
					err = w.wsLoop.subscribe(i, up)
				} else {
					err = w.runWS(s, up)
				}
			case "sse":
				err = w.runSSE(s, up)
			default:
				err = w.runLongPoll(s, up)
			}
			switch {
			case !wasUp && err == nil:
				up(errors.New("stopped (timeout) before connecting"))
			case !wasUp:
				up(err)
			case err != nil:
				w.fail(err)
			}
		}(&w.subs[i])
	}
	ready.Wait()
	w.cpu0 = selfCPU()
	return readyMsg{Connected: int(connected.Load()), Errors: cerrs, FirstError: cfirst,
		ConnectS: time.Since(start).Seconds()}
}

// deliver records one message received by s.
func (w *worker) deliver(s *subscriber, body []byte) {
	now := time.Now().UnixNano()
	seq, ts, ok := parseBody(body)
	if !ok || seq < 0 || seq > w.lastSeq {
		w.bad.Add(1)
		return
	}
	w.delivered.Add(1)
	w.hist.add(time.Duration(now - ts))
	for {
		l := w.lastNano.Load()
		if now <= l || w.lastNano.CompareAndSwap(l, now) {
			break
		}
	}
	word, bit := seq/64, uint64(1)<<uint(seq%64)
	if s.seen[word]&bit != 0 {
		w.dup.Add(1)
		return
	}
	s.seen[word] |= bit
	if seq == w.lastSeq && !s.gotLast {
		s.gotLast = true
		if w.complete.Add(1) == int64(len(w.subs)) {
			w.doneOnce.Do(func() { close(w.done) })
		}
	}
}

// finish waits until every subscriber has the last message, or nothing
// arrived for Drain, or the deadline; then it closes every connection and
// tallies.
func (w *worker) finish(f finishMsg) resultMsg {
	// If the last message was never published, done never closes and
	// the drain timer ends the wait.
	_ = f
	drain := time.Duration(w.cfg.Drain)
	t := time.NewTimer(drain)
	defer t.Stop()
	last := w.delivered.Load()
wait:
	for {
		select {
		case <-w.done:
			break wait
		case <-w.ctx.Done():
			break wait
		case <-t.C:
			if n := w.delivered.Load(); n != last {
				last = n
				t.Reset(drain)
				continue
			}
			break wait
		}
	}
	cpu := selfCPU() - w.cpu0
	w.cancel()
	w.wg.Wait()
	r := resultMsg{Delivered: w.delivered.Load(), Dup: w.dup.Load(), Bad: w.bad.Load(),
		Complete: int(w.complete.Load()), LastNano: w.lastNano.Load(), Hist: w.hist.sparse(), CPU: cpu.Seconds()}
	for i := range w.subs {
		for _, b := range w.subs[i].seen {
			r.Distinct += uint64(bits.OnesCount64(b))
		}
	}
	w.errMu.Lock()
	r.Errors, r.FirstError = w.errors, w.firstError
	w.errMu.Unlock()
	return r
}

// parseBody reads "seq:unixnano:" at the start of a message body.
func parseBody(b []byte) (seq int, ts int64, ok bool) {
	var n int64
	field := 0
	digits := 0
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			n = n*10 + int64(c-'0')
			digits++
		case c == ':' && digits > 0:
			if field == 0 {
				seq, n, digits, field = int(n), 0, 0, 1
				continue
			}
			return seq, n, true
		default:
			return 0, 0, false
		}
	}
	return 0, 0, false
}

// closeOnDone closes c when the worker stops, to unblock its reader.
func (w *worker) closeOnDone(c io.Closer) (stop func() bool) {
	return context.AfterFunc(w.ctx, func() { c.Close() })
}

func (w *worker) stopped(err error) error {
	if w.ctx.Err() != nil || !time.Now().Before(w.cfg.Deadline) {
		return nil // closed by the end of the run, not a failure
	}
	return err
}

// runLongPoll polls s's channel, echoing Last-Modified and Etag.
func (w *worker) runLongPoll(s *subscriber, up func(error)) error {
	var hdrs []byte
	for w.ctx.Err() == nil {
		hc, err := dialHTTP(w.ctx, w.dialer, w.sub.host, 1024)
		if err != nil {
			return w.stopped(err)
		}
		stop := w.closeOnDone(hc.c)
		path := w.sub.path(s.ch)
		for {
			if err := hc.writeRequest("GET", path, w.sub.host, hdrs, nil); err != nil {
				stop()
				hc.close()
				return w.stopped(err)
			}
			up(nil)
			if err := hc.readHeader(); err != nil {
				stop()
				hc.close()
				return w.stopped(err)
			}
			if err := hc.readBody(); err != nil {
				stop()
				hc.close()
				return w.stopped(err)
			}
			switch hc.status {
			case 200:
				if b := multipartBoundary(hc.ctype); b != nil {
					// Several messages in one answer (Nchan's
					// nchan_longpoll_multipart_response, pushd's catch-up).
					if !eachPart(hc.body, b, func(p []byte) { w.deliver(s, p) }) {
						w.bad.Add(1)
					}
				} else {
					w.deliver(s, hc.body)
				}
			case 304, 408:
			default:
				stop()
				hc.close()
				return w.stopped(fmt.Errorf("long-poll answered %d: %.80s", hc.status, bytes.TrimSpace(hc.body)))
			}
			if len(hc.lastMod) > 0 || len(hc.etag) > 0 {
				hdrs = hdrs[:0]
				if len(hc.lastMod) > 0 {
					hdrs = append(append(append(hdrs, "If-Modified-Since: "...), hc.lastMod...), "\r\n"...)
				}
				if len(hc.etag) > 0 {
					hdrs = append(append(append(hdrs, "If-None-Match: "...), hc.etag...), "\r\n"...)
				}
			}
			if hc.closing {
				break
			}
		}
		stop()
		hc.close()
	}
	return nil
}

var sseHeaders = []byte("Accept: text/event-stream\r\nCache-Control: no-cache\r\n")

// runSSE reads s's channel as an EventSource stream.
func (w *worker) runSSE(s *subscriber, up func(error)) error {
	hc, err := dialHTTP(w.ctx, w.dialer, w.sub.host, 512)
	if err != nil {
		return w.stopped(err)
	}
	defer hc.close()
	stop := w.closeOnDone(hc.c)
	defer stop()
	if err := hc.writeRequest("GET", w.sub.path(s.ch), w.sub.host, sseHeaders, nil); err != nil {
		return w.stopped(err)
	}
	if err := hc.readHeader(); err != nil {
		return w.stopped(err)
	}
	if hc.status != 200 {
		return w.stopped(fmt.Errorf("EventSource answered %d", hc.status))
	}
	up(nil)
	var br *bufio.Reader
	if hc.chunked {
		br = bufio.NewReaderSize(hc.streamReader(), 256)
	} else {
		br = hc.br
	}
	var data []byte
	haveData := false
	for {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			return w.stopped(errors.New("EventSource line too long"))
		}
		if err != nil {
			return w.stopped(err)
		}
		line = bytes.TrimRight(line, "\r\n")
		switch {
		case len(line) == 0:
			if haveData {
				w.deliver(s, data)
			}
			data, haveData = data[:0], false
		case line[0] == ':':
		case bytes.HasPrefix(line, []byte("data:")):
			v := line[5:]
			if len(v) > 0 && v[0] == ' ' {
				v = v[1:]
			}
			if haveData {
				data = append(data, '\n')
			}
			data, haveData = append(data, v...), true
		}
	}
}

// runWS reads s's channel over a WebSocket with plain frames, on a
// goroutine of its own (-ws-reader goroutine); see wsLoop for the other
// reader.
func (w *worker) runWS(s *subscriber, up func(error)) error {
	c, resp, err := websocket.Dial(w.ctx, w.sub.url(s.ch), &websocket.DialOptions{
		HTTPClient: w.ws, CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		if resp != nil {
			err = fmt.Errorf("WebSocket handshake answered %d: %w", resp.StatusCode, err)
		}
		return w.stopped(err)
	}
	defer c.CloseNow()
	stop := context.AfterFunc(w.ctx, func() { c.CloseNow() })
	defer stop()
	up(nil)
	buf := make([]byte, 128)
	bg := context.Background() // no per-read timer; the worker's ctx closes c
	for {
		_, r, err := c.Reader(bg)
		if err != nil {
			return w.stopped(err)
		}
		n := 0
		for {
			if n == len(buf) {
				buf = append(buf, make([]byte, len(buf))...)
			}
			m, err := r.Read(buf[n:])
			n += m
			if err == io.EOF {
				break
			}
			if err != nil {
				return w.stopped(err)
			}
		}
		w.deliver(s, buf[:n])
	}
}
