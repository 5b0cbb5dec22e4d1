package push

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// fzModelMsg is a message as the walk model expects it.
type fzModelMsg struct {
	id       MessageID
	data, ct string
}

// fzModelChannel is what the walk model knows of a channel.
type fzModelChannel struct {
	buf    []fzModelMsg // buffered, oldest first (at most fzWalkBuffer)
	last   MessageID    // greatest id ever assigned, across deletes (I1)
	exists bool         // published, created or subscribed to since the last delete
	active int64        // clock of the last publish or subscribe
	lost   MessageID    // newest id dropped from the buffer in this life of the channel
}

// next returns the first buffered message after p (the oldest if p is older
// than the buffer, I4), if any.
func (c *fzModelChannel) next(p MessageID) (fzModelMsg, bool) {
	for _, m := range c.buf {
		if m.id.Compare(p) > 0 {
			return m, true
		}
	}
	return fzModelMsg{}, false
}

const fzWalkBuffer = 3

// FuzzWalk drives the handlers through a sequence of publishes, interval
// polls (single channel and both channels at once), deletes and info
// requests and sweeps (forgetting idle channels, B3), with a clock that
// moves forward, stands still, steps back and jumps past the channel timeout,
// and checks every answer against a model: ids strictly increase per
// channel (I1), each poll returns exactly the next message after the
// position the client echoed (through a carrier chosen by the input, I3)
// or 304 when there is none, bodies and Content-Type byte for byte (S2),
// DELETE and GET answer 200/404 as the channel exists (P3, P5).
func FuzzWalk(f *testing.F) {
	f.Add([]byte{0, 2, 1, 0, 1, 2, 1, 4, 1, 6})                   // publish, poll through every carrier
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0})       // five in one second, buffer of 3: resume at the oldest
	f.Add([]byte{0, 4, 1, 0, 2, 0, 0, 0, 1, 2, 0, 1, 3, 0})       // delete, publish again within the second, clock back
	f.Add([]byte{0, 1, 0, 2, 3, 0, 3, 2, 0, 3, 3, 4, 3, 6})       // both channels at once
	f.Add([]byte{4, 0, 1, 0, 4, 0, 2, 0, 2, 0, 4, 1, 0, 7, 4, 1}) // info and delete of missing channels
	f.Fuzz(func(t *testing.T, ops []byte) {
		if len(ops) > 200 {
			ops = ops[:200]
		}
		clock := fzEpoch.Unix()
		store := fzNewMemoryStore(func() time.Time { return time.Unix(clock, 0) })
		defer store.Close()
		h := New(Options{Store: store, MessageTTL: -1, MessageBufferLength: fzWalkBuffer, IntervalPoll: true, Logger: fzDiscardLogger})
		defer h.Shutdown(context.Background())
		names := [2]string{"a", "b"}
		model := map[string]*fzModelChannel{"a": {}, "b": {}}
		client := map[string]MessageID{} // single-channel walkers' positions
		multi := position{{}, {}}        // the two-channel walker's position
		serve := func(handler http.Handler, method, query string, hdr http.Header, body string) *http.Response {
			r := fzRequest("/", method, query, "", []byte(body))
			for k, v := range hdr {
				r.Header[k] = v
			}
			w := httptest.NewRecorder()
			handler.ServeHTTP(w, r)
			return w.Result()
		}
		for i := 0; i+1 < len(ops); i += 2 {
			op, arg := ops[i]%5, ops[i+1]
			name := names[arg&1]
			ch := model[name]
			switch op {
			case 0: // publish, after moving the clock by -1, 0, +1 or +2 seconds
				clock += int64(arg>>1&3) - 1
				data, ct := fmt.Sprintf("m%d", i), ""
				if arg&8 != 0 {
					ct = "text/x-" + data
				}
				hdr := http.Header{}
				if ct != "" {
					hdr.Set("Content-Type", ct)
				}
				res := serve(h.PublishHandler(), http.MethodPost, "id="+name, hdr, data)
				info := fzReadBody(res)
				if res.StatusCode != http.StatusAccepted {
					t.Fatalf("op %d: publish answered %d %q", i, res.StatusCode, info)
				}
				id := fzInfoLastID(t, info)
				if id.Compare(ch.last) <= 0 {
					t.Fatalf("op %d: id %v after %v in channel %s (I1)", i, id, ch.last, name)
				}
				ch.last, ch.exists, ch.active = id, true, clock
				ch.buf = append(ch.buf, fzModelMsg{id, data, ct})
				if len(ch.buf) > fzWalkBuffer {
					ch.lost = ch.buf[0].id
					ch.buf = ch.buf[1:]
				}
			case 1: // single-channel interval poll from the walker's position
				p := client[name]
				res := serve(h.SubscribeHandler(), http.MethodGet, "id="+name+fzCarry(position{p}, 0, arg>>1)+fzJSONP(arg), fzCarryHeader(position{p}, 0, arg>>1), "")
				a := fzReadAnswer(t, res, 1, arg)
				ch.exists, ch.active = true, clock
				want, ok := ch.next(p)
				switch {
				case !ok:
					if a.status != http.StatusNotModified || (!p.IsZero() && a.pos[0] != p) {
						t.Fatalf("op %d: poll %s from %v answered %+v; want 304 at the same position", i, name, p, a)
					}
				case a.status != http.StatusOK || a.body != want.data || a.ct != want.ct || a.pos[0] != want.id:
					t.Fatalf("op %d: poll %s from %v answered %+v; want %q (%q) at %v", i, name, p, a, want.data, want.ct, want.id)
				}
				// A walker that fell behind the buffer is told so.
				if missed := !p.IsZero() && ch.lost.Compare(p) > 0; !a.jsonp && missed != a.missed && a.status == http.StatusOK {
					t.Fatalf("op %d: poll %s from %v (newest lost %v): X-Push-Missed %v", i, name, p, ch.lost, a.missed)
				}
				client[name] = a.pos[0]
			case 2: // delete
				res := serve(h.PublishHandler(), http.MethodDelete, "id="+name, nil, "")
				if want := map[bool]int{true: 200, false: 404}[ch.exists]; res.StatusCode != want {
					t.Fatalf("op %d: DELETE %s answered %d, want %d", i, name, res.StatusCode, want)
				}
				ch.buf, ch.exists, ch.lost = nil, false, MessageID{}
			case 3: // two-channel interval poll from the walker's compound position
				res := serve(h.SubscribeHandler(), http.MethodGet, "id=a&id=b"+fzCarry(multi, int(arg>>4&1), arg>>1)+fzJSONP(arg), fzCarryHeader(multi, int(arg>>4&1), arg>>1), "")
				a := fzReadAnswer(t, res, 2, arg)
				for _, c := range model {
					c.exists, c.active = true, clock
				}
				body, got := a.body, a.pos
				wa, oka := model["a"].next(multi[0])
				wb, okb := model["b"].next(multi[1])
				switch {
				case !oka && !okb:
					if a.status != http.StatusNotModified {
						t.Fatalf("op %d: poll a+b from %v answered %+v; want 304", i, multi, a)
					}
				case a.status != http.StatusOK:
					t.Fatalf("op %d: poll a+b from %v answered %+v; want a message", i, multi, a)
				case oka && body == wa.data:
					if got[0] != wa.id || a.ct != wa.ct || (!multi[1].IsZero() && got[1] != multi[1]) {
						t.Fatalf("op %d: a's %v from %v answered at %v", i, wa.id, multi, got)
					}
				case okb && body == wb.data:
					if got[1] != wb.id || a.ct != wb.ct || (!multi[0].IsZero() && got[0] != multi[0]) {
						t.Fatalf("op %d: b's %v from %v answered at %v", i, wb.id, multi, got)
					}
				default:
					t.Fatalf("op %d: poll a+b from %v answered %q; want %q or %q", i, multi, body, wa.data, wb.data)
				}
				for j := range got {
					if got[j].Compare(multi[j]) < 0 {
						t.Fatalf("op %d: position went back from %v to %v", i, multi, got)
					}
				}
				multi = got
			case 4:
				if arg&0x80 != 0 { // sweep, after moving the clock past the channel timeout or not
					clock += int64(arg>>1&1) * int64((DefaultChannelTimeout+time.Second)/time.Second)
					store.sweep()
					for _, c := range model {
						if len(c.buf) == 0 && clock-c.active >= int64(DefaultChannelTimeout/time.Second) {
							c.exists, c.lost = false, MessageID{}
						}
					}
					continue
				}
				// channel info
				res := serve(h.PublishHandler(), http.MethodGet, "id="+name, nil, "")
				body := fzReadBody(res)
				switch {
				case !ch.exists:
					if res.StatusCode != http.StatusNotFound || body != "" {
						t.Fatalf("op %d: GET missing %s answered %d %q", i, name, res.StatusCode, body)
					}
				case res.StatusCode != http.StatusOK || !strings.Contains(body, fmt.Sprintf("queued messages: %d\r\n", len(ch.buf))):
					t.Fatalf("op %d: GET %s answered %d %q; want %d queued", i, name, res.StatusCode, body, len(ch.buf))
				case !ch.last.IsZero() && fzInfoLastID(t, body) != ch.last && len(ch.buf) > 0:
					t.Fatalf("op %d: GET %s answered %q; last id %v", i, name, body, ch.last)
				}
			}
		}
	})
}

func fzReadBody(res *http.Response) string {
	b, _ := io.ReadAll(res.Body)
	return string(b)
}

// fzInfoLastID reads "last message id: T:G" from plain-text channel info.
func fzInfoLastID(t *testing.T, info string) MessageID {
	t.Helper()
	_, rest, ok := strings.Cut(info, "last message id: ")
	id, err := ParseMessageID(strings.TrimSpace(rest))
	if !ok || err != nil {
		t.Fatalf("channel info %q: no last message id (%v)", info, err)
	}
	return id
}

// fzCarry returns the query part of carrier c (0-3 of fzCarryHeader's list
// use headers; 4 uses ?last_event_id=) for a walker at pos.
func fzCarry(pos position, mark int, c uint8) string {
	if c%5 != 4 || fzPosZero(pos) {
		return ""
	}
	return "&last_event_id=" + url.QueryEscape(formatPosition(pos, mark))
}

// fzCarryHeader returns the headers of carrier c for a walker at pos:
// If-Modified-Since + If-None-Match (0), If-None-Match alone in compound
// form (1), Etag (2), Last-Event-ID (3). A walker without a position sends
// none.
func fzCarryHeader(pos position, mark int, c uint8) http.Header {
	hdr := http.Header{}
	if fzPosZero(pos) {
		return hdr
	}
	switch c % 5 {
	case 0:
		sec, etag := splitPosition(pos, mark)
		hdr.Set("If-Modified-Since", time.Unix(sec, 0).UTC().Format(http.TimeFormat))
		hdr.Set("If-None-Match", etag)
	case 1:
		hdr.Set("If-None-Match", `"`+formatPosition(pos, mark)+`"`)
	case 2:
		hdr.Set("Etag", formatPosition(pos, mark))
	case 3:
		hdr.Set("Last-Event-ID", formatPosition(pos, mark))
	}
	return hdr
}

func fzPosZero(pos position) bool {
	for _, id := range pos {
		if !id.IsZero() {
			return false
		}
	}
	return true
}

// fzJSONP returns "&callback=cb" for the polls whose arg asks for JSONP.
func fzJSONP(arg uint8) string {
	if arg&0x80 != 0 {
		return "&callback=cb"
	}
	return ""
}

// fzAnswer is a long-poll answer as a client reads it: status 200 with a
// message or 304 with none; for JSONP, 304 stands for {"status":"timeout"}.
type fzAnswer struct {
	status   int
	body, ct string
	pos      position
	missed   bool
	jsonp    bool
}

// fzReadAnswer reads a long-poll answer for n channels: from Last-Modified
// and Etag as a client echoing them would send them, or for JSONP (arg
// from fzJSONP) from the id inside the script, which must be
// cb({...}); with status 200 (S9).
func fzReadAnswer(t *testing.T, res *http.Response, n int, arg uint8) fzAnswer {
	t.Helper()
	body := fzReadBody(res)
	a := fzAnswer{status: res.StatusCode, body: body, ct: res.Header.Get("Content-Type"), jsonp: fzJSONP(arg) != ""}
	if !a.jsonp {
		a.missed = res.Header.Get("X-Push-Missed") == "true"
		pos, err := requestPosition(fzRequestWithPosition(res.Header.Get("Last-Modified"), res.Header.Get("Etag"), "", "", ""), n)
		if err != nil || res.Header.Get("Last-Modified") == "" {
			t.Fatalf("answer %d %q: Last-Modified %q Etag %q: %v", res.StatusCode, body, res.Header.Get("Last-Modified"), res.Header.Get("Etag"), err)
		}
		a.pos = pos
		return a
	}
	inner, ok := strings.CutPrefix(body, "cb(")
	if ok {
		inner, ok = strings.CutSuffix(inner, ");")
	}
	var v struct {
		ID, Channel, Data, Status string
		ContentType               string `json:"content_type"`
	}
	if !ok || res.StatusCode != http.StatusOK || json.Unmarshal([]byte(inner), &v) != nil {
		t.Fatalf("JSONP answer %d %q", res.StatusCode, body)
	}
	pos, err := parsePosition(v.ID, n)
	if err != nil {
		t.Fatalf("JSONP answer %q: id %q does not parse for %d channels: %v", body, v.ID, n, err)
	}
	a.pos, a.body, a.ct = pos, v.Data, v.ContentType
	if v.Status == "timeout" {
		a.status = http.StatusNotModified
	}
	return a
}
