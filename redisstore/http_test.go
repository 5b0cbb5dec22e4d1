package redisstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/pushhub/push"
)

// node is one application node: a Hub on its own Redis store, behind its
// own HTTP server with the publisher at /pub and the subscriber at /sub.
type node struct {
	hub   *push.Hub
	store *Store
	srv   *httptest.Server
}

func newNode(t testing.TB, r *redisServer, prefix string, opts push.Options) *node {
	t.Helper()
	return nodeOn(t, newTestStore(t, r, prefix), opts)
}

// nodeOn returns a node serving a Hub on st.
func nodeOn(t testing.TB, st *Store, opts push.Options) *node {
	t.Helper()
	opts.Store = st
	h := push.New(opts)
	mux := http.NewServeMux()
	mux.Handle("/pub", h.PublishHandler())
	mux.Handle("/sub", h.SubscribeHandler())
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		h.Shutdown(ctx)
		srv.Close()
	})
	return &node{hub: h, store: st, srv: srv}
}

// client is an HTTP client for many concurrent long-polls on loopback.
func newClient(t testing.TB) *http.Client {
	tr := &http.Transport{MaxIdleConnsPerHost: 512, MaxConnsPerHost: 0, IdleConnTimeout: 30 * time.Second}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 60 * time.Second}
}

// publishHTTP POSTs body to channel ch of n and returns the status.
func publishHTTP(ctx context.Context, c *http.Client, n *node, ch, body string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.srv.URL+"/pub?id="+url.QueryEscape(ch), strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "text/plain")
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// position is where a long-poll subscriber is: the Last-Modified and Etag of
// its last answer.
type position struct{ lastModified, etag string }

// poll is one long-poll answer.
type poll struct {
	status int
	body   string
	pos    position
}

// longPoll asks n for the next message of ch after pos (zero: from the start).
func longPoll(ctx context.Context, c *http.Client, n *node, ch string, pos position) (poll, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.srv.URL+"/sub?id="+url.QueryEscape(ch), nil)
	if err != nil {
		return poll{}, err
	}
	if pos.lastModified != "" {
		req.Header.Set("If-Modified-Since", pos.lastModified)
		req.Header.Set("If-None-Match", pos.etag)
	}
	resp, err := c.Do(req)
	if err != nil {
		return poll{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return poll{}, err
	}
	p := poll{status: resp.StatusCode, body: string(b), pos: pos}
	if lm := resp.Header.Get("Last-Modified"); lm != "" {
		p.pos = position{lm, resp.Header.Get("Etag")}
	}
	return p, nil
}

// walker is a long-poll subscriber walking a channel by Last-Modified/Etag,
// retrying after 5xx answers and connection errors (a Redis outage).
type walker struct {
	c     *http.Client
	nodes []*node // tried in turn after an error
	ch    string
	pos   position
	got   []string
	errs  int
}

// next returns the next message body, or an error for an unexpected status
// or when ctx ends.
func (w *walker) next(ctx context.Context) (string, error) {
	for {
		n := w.nodes[w.errs%len(w.nodes)]
		p, err := longPoll(ctx, w.c, n, w.ch, w.pos)
		switch {
		case ctx.Err() != nil:
			return "", fmt.Errorf("%s: gave up after %d messages: %w", w.ch, len(w.got), ctx.Err())
		case err == nil && p.status == http.StatusOK:
			w.pos = p.pos
			w.got = append(w.got, p.body)
			return p.body, nil
		case err == nil && p.status == http.StatusNotModified:
			w.pos = p.pos
			continue
		case err == nil && p.status < 500:
			return "", &statusError{p.status, p.body}
		}
		w.errs++
		// Back off a little before retrying an outage.
		t := time.NewTimer(20 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
	}
}

type statusError struct {
	status int
	body   string
}

func (e *statusError) Error() string { return fmt.Sprintf("status %d: %s", e.status, e.body) }

func isStatus(err error, status int) bool {
	var se *statusError
	return errors.As(err, &se) && se.status == status
}

// waitSubscribers waits until channel ch counts n subscribers across nodes.
func waitSubscribers(t testing.TB, s *Store, ch string, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		ci, err := s.ChannelInfo(context.Background(), ch)
		if err == nil && ci.Subscribers == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("channel %s: %+v (%v), want %d subscribers", ch, ci, err, n)
		}
		<-tick.C
	}
}
