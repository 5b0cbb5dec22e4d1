package push

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"math"
	"net/http"
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
// allows), not only the absence of panics. This file holds the parsers;
// fuzz_handlers_test.go fuzzes single requests to the handlers and
// fuzz_walk_test.go checks request sequences against a model. Seed corpora
// live in testdata/fuzz/<FuzzName>/; .ci/fuzz runs every target briefly.

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
			got, err := hh.channelIDs(r, false)
			fzCheckChannelIDs(t, hh, ids, got, err)
		}
		// A raw query, as it comes off the wire.
		r := &http.Request{Method: http.MethodGet, Host: "example.com", Header: http.Header{},
			URL: &url.URL{Path: "/sub", RawQuery: rawQuery}}
		want := r.URL.Query()["id"]
		got, err := hh.channelIDs(r, false)
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
