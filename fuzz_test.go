package push

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"
)

// Fuzz targets for every parser of client input. Each checks properties a
// user relies on (round trips, an independent oracle, the statuses the spec
// allows), not only the absence of panics. Seed corpora live in
// testdata/fuzz/<FuzzName>/; .ci/fuzz runs every target briefly.

// fzIDRe is the grammar of a single-channel id (I4): T:G, decimal, at most
// 18 digits each (so that they fit in an int64).
var fzIDRe = regexp.MustCompile(`^[0-9]{1,18}:[0-9]{1,18}$`)

func FuzzParseMessageID(f *testing.F) {
	f.Add("1700000000:0", int64(1700000000), int64(0))
	f.Add("0:0", int64(0), int64(0))
	f.Add("1700000000:12", int64(1), int64(2))
	f.Add("-1:0", int64(-1), int64(0))
	f.Add("1:2:3", int64(999999999999999999), int64(999999999999999999))
	f.Add("999999999999999999:999999999999999999", int64(0), int64(7))
	f.Add("9999999999999999999:0", int64(5), int64(-5))
	f.Add(" 1:2", int64(1), int64(2))
	f.Add("+1:2", int64(1), int64(2))
	f.Fuzz(func(t *testing.T, s string, tm, tag int64) {
		id, err := ParseMessageID(s)
		if ok := fzIDRe.MatchString(s) && fzTimesOK(s); ok != (err == nil) {
			t.Fatalf("ParseMessageID(%q) = %v, %v; grammar says valid=%v", s, id, err, ok)
		}
		if err != nil {
			if err != ErrInvalidMessageID {
				t.Fatalf("ParseMessageID(%q) error %v, want ErrInvalidMessageID", s, err)
			}
			if !id.IsZero() {
				t.Fatalf("ParseMessageID(%q) returned %v with an error", s, id)
			}
		} else {
			if id.Time < 0 || id.Tag < 0 {
				t.Fatalf("ParseMessageID(%q) = %v: negative", s, id)
			}
			back, err := ParseMessageID(id.String())
			if err != nil || back != id {
				t.Fatalf("ParseMessageID(%q) = %v, but its String %q re-parses to %v, %v", s, id, id.String(), back, err)
			}
		}
		// Every id a store can assign (T an HTTP-date's seconds, G at most 18 digits)
		// formats and parses back to itself.
		want := MessageID{Time: fzClamp(tm) % (maxIDTime + 1), Tag: fzClamp(tag)}
		got, err := ParseMessageID(want.String())
		if err != nil || got != want {
			t.Fatalf("ParseMessageID(%q) = %v, %v; want %v", want.String(), got, err, want)
		}
		if c := got.Compare(want); c != 0 {
			t.Fatalf("Compare of equal ids = %d", c)
		}
	})
}

// fzClamp maps any int64 to a valid id component: 0 <= v < 10^18.
func fzClamp(v int64) int64 {
	if v < 0 {
		v = -(v + 1)
	}
	return v % 1e18
}

// fzTimesOK reports whether every time in a position that matches the
// grammar (T, and t of the "t.G" entries) is at most the last second an
// HTTP-date can name: later ones could not travel as Last-Modified (I2).
func fzTimesOK(s string) bool {
	base, entries, _ := strings.Cut(s, ":")
	times := []string{base}
	for _, e := range strings.Split(entries, ",") {
		if t, _, ok := strings.Cut(strings.Trim(e, "[]"), "."); ok {
			times = append(times, t)
		}
	}
	for _, t := range times {
		if v, err := strconv.ParseInt(t, 10, 64); err != nil || v > fzMaxHTTPTime {
			return false
		}
	}
	return true
}

// fzPositionRe returns the grammar of a position for n channels (I4, I5).
func fzPositionRe(n int) *regexp.Regexp {
	const d = `[0-9]{1,18}`
	if n == 1 {
		return regexp.MustCompile(`^` + d + `:(` + d + `|\[` + d + `\])$`)
	}
	e := `(-|` + d + `|` + d + `\.` + d + `)`
	entry := `(` + e + `|\[` + e + `\])`
	return regexp.MustCompile(`^` + d + `:` + entry + strings.Repeat(`,`+entry, n-1) + `$`)
}

var fzPositionRes = []*regexp.Regexp{nil, fzPositionRe(1), fzPositionRe(2), fzPositionRe(3), fzPositionRe(4)}

func FuzzParsePosition(f *testing.F) {
	f.Add("1700000000:3", uint8(0))
	f.Add("1700000000:[3]", uint8(0))
	f.Add("1700000000:[3],-", uint8(1))
	f.Add("1700000000:2,[1699999999.4]", uint8(1))
	f.Add("1700000000:-,[0],1700000001.2", uint8(2))
	f.Add("0:-,-,-,-", uint8(3))
	f.Add("1700000000:1,2", uint8(0))
	f.Add("1700000000:1.2.3,4", uint8(1))
	f.Add("1700000000:[-]", uint8(0))
	f.Add("1700000000:,", uint8(1))
	f.Add("1:[[1]],2", uint8(1))
	f.Fuzz(func(t *testing.T, s string, nb uint8) {
		n := 1 + int(nb%4)
		pos, err := parsePosition(s, n)
		if ok := fzPositionRes[n].MatchString(s) && fzTimesOK(s); ok != (err == nil) {
			t.Fatalf("parsePosition(%q, %d) = %v, %v; grammar says valid=%v", s, n, pos, err, ok)
		}
		if err != nil {
			if err != ErrInvalidMessageID {
				t.Fatalf("parsePosition(%q, %d) error %v, want ErrInvalidMessageID", s, n, err)
			}
			return
		}
		fzCheckPosition(t, pos, n, s)
	})
}

func FuzzParseEntries(f *testing.F) {
	f.Add(int64(1700000000), "3", uint8(0))
	f.Add(int64(1700000000), "[3]", uint8(0))
	f.Add(int64(1700000000), "[3],-", uint8(1))
	f.Add(int64(1700000000), "1699999999.4,[0],-", uint8(2))
	f.Add(int64(0), "-,-,-,[-]", uint8(3))
	f.Add(int64(5), "1,2,3", uint8(1))
	f.Add(int64(5), "", uint8(0))
	f.Add(int64(5), ".", uint8(1))
	f.Fuzz(func(t *testing.T, base int64, s string, nb uint8) {
		n := 1 + int(nb%4)
		base = fzClamp(base) % (maxIDTime + 1)
		pos, err := parseEntries(base, s, n)
		// The entries are what follows "T:" in a position.
		full := strconv.FormatInt(base, 10) + ":" + s
		if ok := fzPositionRes[n].MatchString(full) && fzTimesOK(full); ok != (err == nil) {
			t.Fatalf("parseEntries(%d, %q, %d) = %v, %v; grammar says valid=%v", base, s, n, pos, err, ok)
		}
		if err != nil {
			if err != ErrInvalidMessageID {
				t.Fatalf("parseEntries error %v, want ErrInvalidMessageID", err)
			}
			return
		}
		fzCheckPosition(t, pos, n, s)
		// The same entries after "base:" parse to the same position.
		again, err := parsePosition(strconv.FormatInt(base, 10)+":"+s, n)
		if err != nil || !slices.Equal(again, pos) {
			t.Fatalf("parsePosition of %d:%s = %v, %v; parseEntries gave %v", base, s, again, err, pos)
		}
	})
}

// fzCheckPosition checks that a parsed position has n non-negative entries
// and that, whichever channel is marked, its text form (formatPosition) and
// its split form (splitPosition, the Last-Modified seconds and Etag of a
// long-poll answer) both parse back to the same position, and agree with
// each other (I5: "<seconds of Last-Modified>:<Etag>" is the id).
func fzCheckPosition(t *testing.T, pos position, n int, src string) {
	t.Helper()
	if len(pos) != n {
		t.Fatalf("%q: %d entries, want %d", src, len(pos), n)
	}
	for _, id := range pos {
		if id.Time < 0 || id.Tag < 0 {
			t.Fatalf("%q: negative entry in %v", src, pos)
		}
	}
	for mark := 0; mark < n; mark++ {
		text := formatPosition(pos, mark)
		back, err := parsePosition(text, n)
		if err != nil || !slices.Equal(back, pos) {
			t.Fatalf("%q -> %v -> formatPosition(mark %d) %q -> %v, %v", src, pos, mark, text, back, err)
		}
		sec, etag := splitPosition(pos, mark)
		if joined := strconv.FormatInt(sec, 10) + ":" + etag; joined != text {
			t.Fatalf("%v mark %d: split form %q differs from %q", pos, mark, joined, text)
		}
		back, err = parseEntries(sec, etag, n)
		if err != nil || !slices.Equal(back, pos) {
			t.Fatalf("%v mark %d: parseEntries(%d, %q) = %v, %v", pos, mark, sec, etag, back, err)
		}
	}
}

// fzMaxHTTPTime is the last second an HTTP-date can express (year 9999).
var fzMaxHTTPTime = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC).Unix()

func FuzzRequestPosition(f *testing.F) {
	lm := time.Unix(1700000000, 0).UTC().Format(http.TimeFormat)
	f.Add(lm, "3", "", "", "", uint8(0))
	f.Add(lm, `"3"`, "", "", "", uint8(0))
	f.Add(lm, `W/"3"`, "", "", "", uint8(0))
	f.Add(lm, "", "", "", "", uint8(0))
	f.Add(lm, "[2],1699999999.1", "", "", "", uint8(1))
	f.Add("Sunday, 06-Nov-94 08:49:37 GMT", "0", "", "", "", uint8(0))
	f.Add("Sun Nov  6 08:49:37 1994", "", "", "", "", uint8(0))
	f.Add("Thu, 01 Jan 1970 00:00:00 GMT", "-,-", "", "", "", uint8(1))
	f.Add("Wed, 31 Dec 1969 23:59:59 GMT", "1", "", "", "", uint8(0))
	f.Add("yesterday", "1", "", "", "", uint8(0))
	f.Add("", "1700000000:3", "", "", "", uint8(0))
	f.Add("", `W/"1700000000:[3],-"`, "", "", "", uint8(1))
	f.Add("", "", "1700000000:3", "", "", uint8(0))
	f.Add("", "", "", "1700000000:3", "", uint8(0))
	f.Add("", "", "", " 1700000000:1,[2],- ", "", uint8(2))
	f.Add("", "", "", "", "1700000000:3", uint8(0))
	f.Add("", "", "", "", "1700000000:3,4,5,6", uint8(3))
	f.Add("", "*", "", "", "", uint8(0))
	f.Add("", "", "", "", "", uint8(0))
	f.Add("", `""`, "", "garbage", "", uint8(0))
	f.Fuzz(func(t *testing.T, ims, inm, etag, lei, qlei string, nb uint8) {
		n := 1 + int(nb%4)
		r := fzRequestWithPosition(ims, inm, etag, lei, qlei)
		pos, err := requestPosition(r, n)
		if err != nil {
			if err != ErrInvalidMessageID {
				t.Fatalf("requestPosition error %v, want ErrInvalidMessageID", err)
			}
			if ims == "" && inm == "" && etag == "" && lei == "" && qlei == "" {
				t.Fatalf("no carrier, yet %v", err)
			}
			return
		}
		if ims != "" {
			// If-Modified-Since wins: its seconds are the time of every
			// entry that does not name its own (I3).
			tm, perr := http.ParseTime(ims)
			if perr != nil {
				t.Fatalf("If-Modified-Since %q does not parse (%v), yet position %v", ims, perr, pos)
			}
			if unquoteETag(inm) == "" {
				for _, id := range pos {
					if id != (MessageID{Time: tm.Unix()}) {
						t.Fatalf("If-Modified-Since %q alone gave %v", ims, pos)
					}
				}
			}
		}
		if ims == "" && inm == "" && etag == "" && lei == "" && qlei == "" {
			if !slices.Equal(pos, make(position, n)) {
				t.Fatalf("no carrier gave %v, want the zero position", pos)
			}
			return
		}
		fzCheckPosition(t, pos, n, "request")
		// The position round-trips through every carrier of I3.
		for mark := 0; mark < n; mark++ {
			sec, tag := splitPosition(pos, mark)
			text := formatPosition(pos, mark)
			if sec > fzMaxHTTPTime {
				t.Fatalf("position %v has a time no Last-Modified can carry", pos)
			}
			lm := time.Unix(sec, 0).UTC().Format(http.TimeFormat)
			cases := [][5]string{
				{lm, tag},
				{lm, `"` + tag + `"`},
				{lm, `W/"` + tag + `"`},
			}
			cases = append(cases,
				[5]string{"", text},
				[5]string{"", `"` + text + `"`},
				[5]string{"", "", text},
				[5]string{"", "", `"` + text + `"`},
				[5]string{"", "", "", text},
				[5]string{"", "", "", "", text})
			for _, c := range cases {
				got, err := requestPosition(fzRequestWithPosition(c[0], c[1], c[2], c[3], c[4]), n)
				if err != nil || !slices.Equal(got, pos) {
					t.Fatalf("position %v sent as %q read back as %v, %v", pos, c, got, err)
				}
			}
		}
	})
}

// fzRequestWithPosition builds a GET carrying the given id carriers (empty
// ones are left out).
func fzRequestWithPosition(ims, inm, etag, lei, qlei string) *http.Request {
	r := &http.Request{Method: http.MethodGet, URL: &url.URL{Path: "/sub"}, Header: http.Header{}, Host: "example.com"}
	set := func(k, v string) {
		if v != "" {
			r.Header.Set(k, v)
		}
	}
	set("If-Modified-Since", ims)
	set("If-None-Match", inm)
	set("Etag", etag)
	set("Last-Event-ID", lei)
	q := url.Values{"id": {"a"}}
	if qlei != "" {
		q.Set("last_event_id", qlei)
	}
	r.URL.RawQuery = q.Encode()
	return r
}

func FuzzChannelIDs(f *testing.F) {
	f.Add("news", "", uint16(0), "id=news")
	f.Add("a", "b", uint16(0), "id=a&id=b")
	f.Add("", "", uint16(0), "")
	f.Add("", "x", uint16(0), "id=&id=x")
	f.Add("\x00", "", uint16(0), "id=%00")
	f.Add("caf\xc3\xa9", "\xff\xfe", uint16(3), "id=%ff")
	f.Add("tab\there", "", uint16(0), "id=a;b")
	f.Add("\u0085next-line", "\u00a0nbsp", uint16(0), "id=%C2%85")
	f.Add(strings.Repeat("x", 1025), "", uint16(0), "id="+strings.Repeat("y", 1024))
	f.Add("/chat/room 1?#", "日本語", uint16(8), "id=%2Fchat%2Froom+1%3F%23&other=1")
	h := New(Options{MessageTTL: -1})
	f.Cleanup(func() { h.Shutdown(context.Background()) })
	hubs := map[int]*Hub{}
	f.Cleanup(func() {
		for _, h := range hubs {
			h.Shutdown(context.Background())
		}
	})
	f.Fuzz(func(t *testing.T, a, b string, max uint16, rawQuery string) {
		limit := int(max % 64)
		hh := h
		if limit > 0 {
			if hubs[limit] == nil {
				hubs[limit] = New(Options{MaxChannelIDLength: limit, MessageTTL: -1})
			}
			hh = hubs[limit]
		} else {
			limit = DefaultMaxChannelIDLength
		}
		for _, id := range []string{a, b} {
			valid := id != "" && len(id) <= limit && utf8.ValidString(id) && strings.IndexFunc(id, unicode.IsControl) < 0
			err := hh.ValidateChannelID(id)
			if valid != (err == nil) {
				t.Fatalf("ValidateChannelID(%q) (limit %d) = %v, want valid=%v", id, limit, err, valid)
			}
			if err != nil && err.Error() == "" {
				t.Fatalf("ValidateChannelID(%q): an error without a reason", id)
			}
			if !valid {
				// Refused by every entry point, never truncated into a valid one.
				if _, _, perr := hh.Publish(context.Background(), id, &Message{}); perr == nil {
					t.Fatalf("Publish to invalid channel %q succeeded", id)
				}
				continue
			}
			// A valid id names its own channel, byte for byte.
			m, _, err := hh.Publish(context.Background(), id, &Message{Data: []byte(id)})
			if err != nil || m.Channel != id {
				t.Fatalf("Publish(%q) = %v, %v", id, m, err)
			}
			info, err := hh.ChannelInfo(context.Background(), id)
			if err != nil || info.LastMessageID != m.ID {
				t.Fatalf("ChannelInfo(%q) = %+v, %v after publishing %v", id, info, err, m.ID)
			}
		}
		// Ids through a request's query, encoded as a client would.
		for _, ids := range [][]string{{a}, {a, b}} {
			r := &http.Request{Method: http.MethodGet, Host: "example.com", Header: http.Header{},
				URL: &url.URL{Path: "/sub", RawQuery: url.Values{"id": ids}.Encode()}}
			got, err := hh.channelIDs(r)
			fzCheckChannelIDs(t, hh, ids, got, err)
		}
		// A raw query, as it comes off the wire.
		r := &http.Request{Method: http.MethodGet, Host: "example.com", Header: http.Header{},
			URL: &url.URL{Path: "/sub", RawQuery: rawQuery}}
		want := r.URL.Query()["id"]
		got, err := hh.channelIDs(r)
		fzCheckChannelIDs(t, hh, want, got, err)
	})
}

// fzCheckChannelIDs checks channelIDs' answer for a request whose query
// holds the ids want: exactly those ids, or 404 for none, or 400 naming why.
func fzCheckChannelIDs(t *testing.T, h *Hub, want, got []string, err error) {
	t.Helper()
	var he *HTTPError
	switch {
	case len(want) == 0 || (len(want) == 1 && want[0] == ""):
		if err != errNoChannelID {
			t.Fatalf("ids %q: got %q, %v; want 404 No channel id provided.", want, got, err)
		}
	case err == nil:
		if !slices.Equal(got, want) {
			t.Fatalf("ids %q read as %q", want, got)
		}
		for _, id := range got {
			if verr := h.ValidateChannelID(id); verr != nil {
				t.Fatalf("channelIDs accepted %q: %v", id, verr)
			}
		}
	case !errors.As(err, &he) || he.StatusCode != http.StatusBadRequest || he.Message == "":
		t.Fatalf("ids %q: error %#v, want a 400 *HTTPError with a reason", want, err)
	default:
		bad := false
		for _, id := range want {
			bad = bad || h.ValidateChannelID(id) != nil
		}
		if !bad {
			t.Fatalf("ids %q all valid, yet %v", want, err)
		}
	}
}

// fzNegotiate is an independent reading of the P6 negotiation rule: the
// supported media type with the highest q (q outside 0..1 or unreadable
// counts as 0; 0 is "not acceptable"), the first on ties; plain text when
// none is acceptable.
func fzNegotiate(accept string) string {
	supported := []string{"text/plain", "application/json", "text/json", "application/x-json", "text/x-json",
		"application/xml", "text/xml", "application/yaml", "text/yaml", "application/x-yaml", "text/x-yaml"}
	best, bestQ := "text/plain", 0.0
	for _, part := range strings.Split(accept, ",") {
		fields := strings.Split(part, ";")
		mt := strings.TrimSpace(fields[0])
		q := 1.0
		for _, p := range fields[1:] {
			k, v, _ := strings.Cut(p, "=")
			if strings.EqualFold(strings.TrimSpace(k), "q") {
				f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
				if err != nil || math.IsNaN(f) || f < 0 || f > 1 {
					f = 0
				}
				q = f
			}
		}
		if q <= bestQ {
			continue
		}
		for _, s := range supported {
			if s == fzASCIILower(mt) {
				best, bestQ = s, q
			}
		}
	}
	return best
}

// fzASCIILower lowers ASCII letters only: media types are ASCII, so
// "application/jſon" (U+017F) is not application/json.
func fzASCIILower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

func FuzzNegotiateInfo(f *testing.F) {
	for _, s := range []string{
		"", "*/*", "application/json", "text/json", "TEXT/XML", "application/yaml;q=0.5, text/xml;q=0.6",
		"text/plain;q=0, application/json;q=0", "application/json;q=NaN, text/xml;q=0.1",
		"application/json; q=1.5, text/yaml", "application/xml;level=1;q=0.9, text/x-json;Q=0.9",
		"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", ",,;;q=,", "application/json;q=0x1p-1",
	} {
		f.Add(s)
	}
	info := ChannelInfo{Messages: 2, Subscribers: 1, LastMessageID: MessageID{Time: 1700000000, Tag: 1},
		LastRequested: time.Unix(1699999995, 0)}
	at := time.Unix(1700000000, 0)
	f.Fuzz(func(t *testing.T, accept string) {
		format, mediaType := negotiateInfo(accept)
		if want := fzNegotiate(accept); mediaType != want {
			t.Fatalf("negotiateInfo(%q) = %q, want %q", accept, mediaType, want)
		}
		i := slices.IndexFunc(infoMediaTypes, func(m struct {
			mediaType string
			format    infoFormat
		}) bool {
			return m.mediaType == mediaType
		})
		if i < 0 || infoMediaTypes[i].format != format {
			t.Fatalf("negotiateInfo(%q) = %v, %q: not a supported pair", accept, format, mediaType)
		}
		// The body is readable in the format named (P6).
		body := formatInfo(info, format, at)
		switch format {
		case infoJSON:
			var v struct {
				Messages    int    `json:"messages"`
				Requested   int64  `json:"requested"`
				Subscribers int    `json:"subscribers"`
				Last        string `json:"last_message_id"`
			}
			if err := json.Unmarshal(body, &v); err != nil || v.Messages != 2 || v.Requested != 5 || v.Subscribers != 1 || v.Last != "1700000000:1" {
				t.Fatalf("JSON info %q read as %+v, %v", body, v, err)
			}
		case infoXML:
			var v struct {
				Messages int    `xml:"messages"`
				Last     string `xml:"last_message_id"`
			}
			if err := xml.Unmarshal(body, &v); err != nil || v.Messages != 2 || v.Last != "1700000000:1" {
				t.Fatalf("XML info %q read as %+v, %v", body, v, err)
			}
		case infoPlain:
			if !bytes.Contains(body, []byte("last message id: 1700000000:1")) {
				t.Fatalf("plain info %q", body)
			}
		case infoYAML:
			if !bytes.Contains(body, []byte("last_message_id: \"1700000000:1\"")) {
				t.Fatalf("YAML info %q", body)
			}
		}
	})
}

// fzCallbackRe is S9's grammar of a JSONP callback name.
var fzCallbackRe = regexp.MustCompile(`^[A-Za-z_$][A-Za-z0-9_$.]{0,63}$`)

func FuzzValidCallback(f *testing.F) {
	for _, s := range []string{"cb", "jQuery123_456", "$", "_", "a.b.c", "alert(1)//", "1abc", ".x", "",
		strings.Repeat("a", 64), strings.Repeat("a", 65), "é", "a\n", "a b", "x\xff", "window.parent.cb$"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		got, want := validCallback(name), fzCallbackRe.MatchString(name)
		if got != want {
			t.Fatalf("validCallback(%q) = %v, the S9 grammar says %v", name, got, want)
		}
		if got {
			// An accepted name cannot break out of the script it starts.
			if strings.ContainsAny(name, "()<>\"'/;=+-*&|!`\\ \t\r\n") {
				t.Fatalf("validCallback accepted %q", name)
			}
		}
	})
}

// fzEpoch is the fixed clock of the handler fuzz target's store, so that
// seed corpora can name real ids (1700000000:0 is the first message).
var fzEpoch = time.Unix(1700000000, 0)

// fzNewMemoryStore is NewMemoryStore with a fixed clock set before the
// sweeper starts (assigning MemoryStore.now later would race with it).
func fzNewMemoryStore(clock func() time.Time) *MemoryStore {
	s := &MemoryStore{seed: maphash.MakeSeed(), now: clock, stop: make(chan struct{}), done: make(chan struct{})}
	for i := range s.shards {
		s.shards[i].channels = make(map[string]*memoryChannel)
		s.shards[i].tombstones = make(map[string]MessageID)
	}
	go s.sweepLoop(time.Hour)
	return s
}

// fzHandlerHub returns a Hub whose options come from the bits of flags,
// with channels a (3 messages), b (1 message) and empty (created, no
// message), and a function that shuts it down.
func fzHandlerHub(t *testing.T, flags uint8) (*Hub, func()) {
	store := fzNewMemoryStore(func() time.Time { return fzEpoch })
	opts := Options{
		Store:             store,
		MessageTTL:        -1, // the fixed clock is in the past
		SubscriberTimeout: time.Millisecond,
		Logger:            fzDiscardLogger,
		AuthorizePublish: func(r *http.Request, channel string) error {
			return fzAuthorize([]string{channel})
		},
		AuthorizeSubscribe: func(r *http.Request, channels []string) error {
			return fzAuthorize(channels)
		},
	}
	opts.IntervalPoll = flags&1 != 0
	if flags&2 != 0 {
		opts.TimeoutStatus = http.StatusRequestTimeout
	}
	switch (flags >> 2) & 3 {
	case 1:
		opts.Concurrency = Last
	case 2:
		opts.Concurrency = First
	case 3:
		opts.MaxSubscribersPerChannel = 1
	}
	opts.AuthorizedChannelsOnly = flags&16 != 0
	opts.PutPublishes = flags&32 != 0
	if flags&64 != 0 {
		opts.AllowedOrigins = []string{"http://ok.example", "https://*.example.org"}
	}
	if flags&128 != 0 {
		opts.MaxMessageSize = 16
		opts.MessageBufferLength = -1
		opts.MaxChannelIDLength = 8
	}
	h := New(opts)
	ctx := context.Background()
	for _, p := range []struct{ ch, data, ct string }{
		{"a", "one", "text/plain"}, {"a", "two", ""}, {"a", "three", "application/json"}, {"b", "bee", "text/plain"},
	} {
		if _, _, err := h.Publish(ctx, p.ch, &Message{Data: []byte(p.data), ContentType: p.ct}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := h.CreateChannel(ctx, "empty"); err != nil {
		t.Fatal(err)
	}
	return h, func() {
		if err := h.Shutdown(ctx); err != nil {
			t.Error(err)
		}
		store.Close()
	}
}

var fzDiscardLogger = slog.New(slog.DiscardHandler)

// fzAuthorize refuses the channel "deny" with 403 and "private" with 401.
func fzAuthorize(channels []string) error {
	for _, c := range channels {
		switch c {
		case "deny":
			return errors.New("this channel is closed")
		case "private":
			return &HTTPError{StatusCode: http.StatusUnauthorized, Message: "log in first"}
		}
	}
	return nil
}

// Statuses the spec allows each handler to answer (503 only on Shutdown).
var (
	fzPublisherStatuses  = []int{200, 201, 202, 400, 401, 403, 404, 405, 413}
	fzSubscriberStatuses = []int{200, 304, 400, 401, 403, 404, 405, 408, 409, 410}
)

// fzToken reports whether s is a valid HTTP token (a method or header name
// a server would accept).
func fzToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// fzRequest builds the request a server would hand a handler: method
// (empty: GET), raw query, header lines "Name: value" separated by "\n",
// body. Parts a server would refuse (bad method or header names, control
// characters) are dropped.
func fzRequest(path, method, rawQuery, headers string, body []byte) *http.Request {
	if !fzToken(method) {
		method = http.MethodGet
	}
	rawQuery = strings.Map(func(r rune) rune {
		if r <= ' ' || r == 0x7f || r == '#' {
			return -1
		}
		return r
	}, rawQuery)
	r := &http.Request{
		Method: method, URL: &url.URL{Path: path, RawQuery: rawQuery}, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{}, Host: "example.com", RemoteAddr: "127.0.0.1:1234", RequestURI: path + "?" + rawQuery,
		Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body)),
	}
	for _, line := range strings.Split(headers, "\n") {
		k, v, ok := strings.Cut(line, ":")
		v = strings.TrimSpace(v)
		if !ok || !fzToken(k) || strings.ContainsFunc(v, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }) {
			continue
		}
		r.Header.Add(k, v)
	}
	return r.WithContext(context.Background())
}

func FuzzHandlers(f *testing.F) {
	lm := fzEpoch.UTC().Format(http.TimeFormat)
	type seed struct {
		pub                    bool
		flags                  uint8
		method, query, headers string
		body                   string
	}
	for _, s := range []seed{
		{false, 0, "GET", "id=a", "", ""},
		{false, 0, "GET", "id=a", "If-Modified-Since: " + lm + "\nIf-None-Match: 0", ""},
		{false, 0, "GET", "id=a", "If-Modified-Since: " + lm + "\nIf-None-Match: 2", ""},
		{false, 1, "GET", "id=a&id=b", "Last-Event-ID: 1700000000:[0],-", ""},
		{false, 0, "GET", "id=a&last_event_id=1700000000:1", "", ""},
		{false, 0, "GET", "id=a&callback=cb", "Etag: 1700000000:0", ""},
		{false, 0, "GET", "id=a&callback=alert(1)//", "", ""},
		{false, 0, "GET", "id=a&callback=", "", ""},
		{false, 2, "GET", "id=empty", "", ""},
		{false, 16, "GET", "id=nope", "", ""},
		{false, 0, "GET", "id=a", "If-None-Match: garbage", ""},
		{false, 0, "GET", "id=a&callback=cb", "If-None-Match: garbage", ""},
		{false, 64, "GET", "id=a", "Origin: http://evil.example", ""},
		{false, 64, "OPTIONS", "id=a", "Origin: https://x.example.org", ""},
		{false, 0, "POST", "id=a", "", "x"},
		{false, 0, "GET", "", "", ""},
		{false, 0, "GET", "id=%00", "", ""},
		{false, 0, "GET", "id=private", "", ""},
		{false, 0, "GET", "id=deny&callback=cb", "", ""},
		{true, 0, "POST", "id=a", "Content-Type: text/plain\nAccept: application/json", "hello"},
		{true, 0, "POST", "id=new", "X-EventSource-Event: ping", ""},
		{true, 128, "POST", "id=a", "", "this body is longer than sixteen bytes"},
		{true, 0, "PUT", "id=c", "Accept: text/xml", ""},
		{true, 32, "PUT", "id=c", "Accept: text/yaml", "put body"},
		{true, 0, "GET", "id=a&callback=cb", "", ""},
		{true, 0, "GET", "id=missing", "", ""},
		{true, 0, "HEAD", "id=a", "", ""},
		{true, 0, "DELETE", "id=b", "", ""},
		{true, 0, "PATCH", "id=a", "", ""},
		{true, 0, "POST", "id=a&id=b", "", "two"},
		{true, 64, "POST", "id=a", "Origin: http://evil.example", "x"},
		{true, 0, "OPTIONS", "", "", ""},
	} {
		f.Add(s.pub, s.flags, s.method, s.query, s.headers, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, pub bool, flags uint8, method, rawQuery, headers string, body []byte) {
		h, done := fzHandlerHub(t, flags)
		defer done()
		path, handler, allowed, allow := "/sub", h.SubscribeHandler(), fzSubscriberStatuses, subscriberAllow
		if pub {
			path, handler, allowed, allow = "/pub", h.PublishHandler(), fzPublisherStatuses, publisherAllow
		}
		r := fzRequest(path, method, rawQuery, headers, body)
		// A recorder cannot be hijacked (WebSocket) and a stream never ends
		// on its own: keep to the transports that answer once (long-poll,
		// JSONP). The streaming ones are tested over real connections.
		r.Header.Del("Upgrade")
		if !pub {
			r.Header.Del("Accept")
			r.Header.Del("Te")
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		r = r.WithContext(ctx)
		// What the request carries, read before the handler consumes it.
		q := r.URL.Query()
		callback, hasCallback := q.Get("callback"), q.Has("callback")
		ids, idsErr := h.channelIDs(r)
		reqPos, posErr := requestPosition(r, max(len(ids), 1))
		originOK := h.checkOrigin(r) != originRefused

		w := &fzOnceWriter{httptest.NewRecorder(), cancel}
		handler.ServeHTTP(w, r)
		res := w.Result()
		status, got := res.StatusCode, w.Body.Bytes()
		if status >= 500 || !slices.Contains(allowed, status) {
			t.Fatalf("%s %s?%s answered %d %q; allowed: %v", r.Method, path, rawQuery, status, got, allowed)
		}
		if status == http.StatusMethodNotAllowed && res.Header.Get("Allow") != allow {
			t.Fatalf("405 with Allow %q, want %q", res.Header.Get("Allow"), allow)
		}
		if res.Header.Get("Content-Type") == "application/javascript" {
			fzCheckJSONP(t, status, callback, got)
		}
		if !originOK || (r.Method != http.MethodGet && (!pub || r.Method == http.MethodOptions)) {
			return // refused before reading the request, or a preflight
		}
		if pub {
			fzCheckPublisher(t, h, r, status, got, body, ids)
			return
		}
		if hasCallback && validCallback(callback) {
			if status != http.StatusOK {
				t.Fatalf("JSONP subscriber answered %d; S9 says always 200", status)
			}
			return
		}
		if idsErr == nil && posErr != nil && !hasCallback {
			if status != http.StatusBadRequest || string(got) != "Message ID invalid" {
				t.Fatalf("invalid position answered %d %q; want 400 Message ID invalid", status, got)
			}
		}
		if status == http.StatusOK || status == http.StatusNotModified || status == http.StatusRequestTimeout {
			fzCheckAnswerPosition(t, res, reqPos, len(ids), status == http.StatusOK)
		}
	})
}

// fzOnceWriter is a recorder that ends the request (cancels its context)
// once an answer has begun, so a handler that would hold a stream open
// returns instead of hanging the fuzzer. Long-poll and JSONP answers are
// written whole all the same: they check the context before they start.
type fzOnceWriter struct {
	*httptest.ResponseRecorder
	cancel context.CancelFunc
}

func (w *fzOnceWriter) WriteHeader(code int) {
	w.ResponseRecorder.WriteHeader(code)
	w.cancel()
}

func (w *fzOnceWriter) Flush() {
	w.ResponseRecorder.Flush()
	w.cancel()
}

// fzCheckJSONP checks a JSONP answer (S9): 200, "callback(<JSON>);", and
// nothing that could end the script element it runs in.
func fzCheckJSONP(t *testing.T, status int, callback string, body []byte) {
	t.Helper()
	if status != http.StatusOK {
		t.Fatalf("JSONP answer with status %d", status)
	}
	inner, ok := bytes.CutPrefix(body, []byte(callback+"("))
	if ok {
		inner, ok = bytes.CutSuffix(inner, []byte(");"))
	}
	if !ok || !json.Valid(inner) {
		t.Fatalf("JSONP body %q is not %s(<JSON>);", body, callback)
	}
	if bytes.ContainsAny(body, "<>") || bytes.Contains(body, []byte("\u2028")) || bytes.Contains(body, []byte("\u2029")) {
		t.Fatalf("JSONP body %q holds characters that can end a script", body)
	}
}

// fzCheckPublisher checks a publisher answer: channel info on 2xx in the
// negotiated type, and a POST's body and Content-Type stored byte for byte.
func fzCheckPublisher(t *testing.T, h *Hub, r *http.Request, status int, got, body []byte, ids []string) {
	t.Helper()
	if r.URL.Query().Has("callback") || status >= 300 {
		return
	}
	if _, want := negotiateInfo(r.Header.Get("Accept")); r.Method != http.MethodHead && len(got) == 0 {
		t.Fatalf("%s answered %d with no channel info (want %s)", r.Method, status, want)
	}
	published := status == http.StatusCreated || status == http.StatusAccepted
	if published != (r.Method == http.MethodPost || (r.Method == http.MethodPut && h.opts.PutPublishes)) {
		t.Fatalf("%s answered %d", r.Method, status)
	}
	if !published || h.cfg.BufferLength == 0 {
		return
	}
	b, err := h.store.Messages(context.Background(), ids[0], MessageID{}, 100)
	if err != nil || len(b.Messages) == 0 {
		t.Fatalf("published to %q, yet the buffer holds %v, %v", ids[0], b.Messages, err)
	}
	m := b.Messages[len(b.Messages)-1]
	wantCT := ""
	if v := r.Header.Values("Content-Type"); len(v) > 0 {
		wantCT = v[0]
	}
	if !bytes.Equal(m.Data, body) || m.ContentType != wantCT || m.EventName != r.Header.Get("X-EventSource-Event") {
		t.Fatalf("stored %q (%q, event %q), published %q (%q)", m.Data, m.ContentType, m.EventName, body, wantCT)
	}
}

// fzCheckAnswerPosition checks the Last-Modified/Etag of a long-poll answer:
// they parse as a position for n channels, no entry is older than the
// request's, and a 200 moved at least one entry forward.
func fzCheckAnswerPosition(t *testing.T, res *http.Response, reqPos position, n int, moved bool) {
	t.Helper()
	lm, etag := res.Header.Get("Last-Modified"), res.Header.Get("Etag")
	if lm == "" || etag == "" {
		t.Fatalf("%d without Last-Modified/Etag: %v", res.StatusCode, res.Header)
	}
	pos, err := requestPosition(fzRequestWithPosition(lm, etag, "", "", ""), n)
	if err != nil {
		t.Fatalf("answer's Last-Modified %q Etag %q do not read back: %v", lm, etag, err)
	}
	forward := false
	for i := range pos {
		switch pos[i].Compare(reqPos[i]) {
		case -1:
			t.Fatalf("answer position %v is behind the request's %v", pos, reqPos)
		case 1:
			forward = true
		}
	}
	if moved && !forward {
		t.Fatalf("200 answer position %v did not move past %v", pos, reqPos)
	}
}

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
				res := serve(h.SubscribeHandler(), http.MethodGet, "id="+name+fzCarry(position{p}, 0, arg>>1), fzCarryHeader(position{p}, 0, arg>>1), "")
				body := fzReadBody(res)
				ch.exists, ch.active = true, clock
				want, ok := ch.next(p)
				got := fzAnswerPosition(t, res, 1)
				switch {
				case !ok:
					if res.StatusCode != http.StatusNotModified || (!p.IsZero() && got[0] != p) {
						t.Fatalf("op %d: poll %s from %v answered %d %q at %v; want 304 at the same position", i, name, p, res.StatusCode, body, got)
					}
				case res.StatusCode != http.StatusOK || body != want.data || res.Header.Get("Content-Type") != want.ct || got[0] != want.id:
					t.Fatalf("op %d: poll %s from %v answered %d %q (%q) at %v; want %q (%q) at %v",
						i, name, p, res.StatusCode, body, res.Header.Get("Content-Type"), got, want.data, want.ct, want.id)
				}
				// A walker that fell behind the buffer is told so.
				if missed := !p.IsZero() && ch.lost.Compare(p) > 0; missed != (res.Header.Get("X-Push-Missed") == "true") && res.StatusCode == http.StatusOK {
					t.Fatalf("op %d: poll %s from %v (newest lost %v): X-Push-Missed %q", i, name, p, ch.lost, res.Header.Get("X-Push-Missed"))
				}
				client[name] = got[0]
			case 2: // delete
				res := serve(h.PublishHandler(), http.MethodDelete, "id="+name, nil, "")
				if want := map[bool]int{true: 200, false: 404}[ch.exists]; res.StatusCode != want {
					t.Fatalf("op %d: DELETE %s answered %d, want %d", i, name, res.StatusCode, want)
				}
				ch.buf, ch.exists, ch.lost = nil, false, MessageID{}
			case 3: // two-channel interval poll from the walker's compound position
				res := serve(h.SubscribeHandler(), http.MethodGet, "id=a&id=b"+fzCarry(multi, int(arg>>4&1), arg>>1), fzCarryHeader(multi, int(arg>>4&1), arg>>1), "")
				body := fzReadBody(res)
				for _, c := range model {
					c.exists, c.active = true, clock
				}
				got := fzAnswerPosition(t, res, 2)
				wa, oka := model["a"].next(multi[0])
				wb, okb := model["b"].next(multi[1])
				switch {
				case !oka && !okb:
					if res.StatusCode != http.StatusNotModified {
						t.Fatalf("op %d: poll a+b from %v answered %d %q; want 304", i, multi, res.StatusCode, body)
					}
				case res.StatusCode != http.StatusOK:
					t.Fatalf("op %d: poll a+b from %v answered %d; want a message", i, multi, res.StatusCode)
				case oka && body == wa.data:
					if got[0] != wa.id || (!multi[1].IsZero() && got[1] != multi[1]) {
						t.Fatalf("op %d: a's %v from %v answered at %v", i, wa.id, multi, got)
					}
				case okb && body == wb.data:
					if got[1] != wb.id || (!multi[0].IsZero() && got[0] != multi[0]) {
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

// fzAnswerPosition reads the position of a long-poll answer from its
// Last-Modified and Etag, as a client echoing them would send it.
func fzAnswerPosition(t *testing.T, res *http.Response, n int) position {
	t.Helper()
	pos, err := requestPosition(fzRequestWithPosition(res.Header.Get("Last-Modified"), res.Header.Get("Etag"), "", "", ""), n)
	if err != nil || res.Header.Get("Last-Modified") == "" {
		t.Fatalf("answer %d: Last-Modified %q Etag %q: %v", res.StatusCode, res.Header.Get("Last-Modified"), res.Header.Get("Etag"), err)
	}
	return pos
}
