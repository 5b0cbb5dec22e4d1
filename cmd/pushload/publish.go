package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"time"
)

// publisher is one keep-alive HTTP connection that POSTs messages.
type publisher struct {
	t    *target
	d    *dialer
	hc   *httpConn
	body []byte
}

var pubHeaders = []byte("Content-Type: text/plain\r\n")

// makeBody writes "seq:unixnano:" padded with dots to size bytes.
func makeBody(dst []byte, seq int, ts int64, size int) []byte {
	b := strconv.AppendInt(dst[:0], int64(seq), 10)
	b = append(b, ':')
	b = strconv.AppendInt(b, ts, 10)
	b = append(b, ':')
	for len(b) < size {
		b = append(b, '.')
	}
	return b
}

// publish POSTs message seq to channel ch, stamping the body with the time
// just before sending, and returns the status.
func (p *publisher) publish(ctx context.Context, ch string, seq, size int) (int, error) {
	for attempt := 0; ; attempt++ {
		if p.hc == nil {
			hc, err := dialHTTP(ctx, p.d, p.t.host, 1024)
			if err != nil {
				return 0, err
			}
			p.hc = hc
		}
		p.body = makeBody(p.body, seq, time.Now().UnixNano(), size)
		err := p.hc.writeRequest("POST", p.t.path(ch), p.t.host, pubHeaders, p.body)
		if err == nil {
			err = p.hc.readHeader()
		}
		if err == nil {
			err = p.hc.readBody()
		}
		if err != nil {
			// A keep-alive connection the server closed: retry once fresh.
			p.close()
			if attempt == 0 && ctx.Err() == nil {
				continue
			}
			return 0, err
		}
		st := p.hc.status
		if p.hc.closing {
			p.close()
		}
		if st < 200 || st > 299 {
			return st, fmt.Errorf("publish answered %d", st)
		}
		return st, nil
	}
}

func (p *publisher) close() {
	if p.hc != nil {
		p.hc.close()
		p.hc = nil
	}
}

var textSubs = regexp.MustCompile(`(?i)active subscribers:\s*(\d+)`)

// subscribers asks the publisher location for a channel's subscriber count
// (NHPM channel info), or -1 if the server does not say.
func (p *publisher) subscribers(ctx context.Context, ch string) int {
	for attempt := 0; attempt < 2; attempt++ {
		if p.hc == nil {
			hc, err := dialHTTP(ctx, p.d, p.t.host, 1024)
			if err != nil {
				return -1
			}
			p.hc = hc
		}
		err := p.hc.writeRequest("GET", p.t.path(ch), p.t.host, []byte("Accept: text/json\r\n"), nil)
		if err == nil {
			err = p.hc.readHeader()
		}
		if err == nil {
			err = p.hc.readBody()
		}
		if err != nil {
			p.close()
			continue
		}
		body, st := bytes.TrimSpace(p.hc.body), p.hc.status
		if p.hc.closing {
			p.close()
		}
		if st == 404 {
			return 0
		}
		var info struct {
			Subscribers *int `json:"subscribers"`
		}
		if json.Unmarshal(body, &info) == nil && info.Subscribers != nil {
			return *info.Subscribers
		}
		if m := textSubs.FindSubmatch(body); m != nil {
			n, _ := strconv.Atoi(string(m[1]))
			return n
		}
		return -1
	}
	return -1
}
