package push

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// S2 under load: 200 long-poll subscribers walk one channel by echoing
// Last-Modified/Etag while 4 publishers publish 500 messages (buffer 1000).
// Every subscriber sees every message exactly once, in the order the store
// assigned, and each publisher's messages in the order it sent them.
func TestSpecConcurrentWalkers(t *testing.T) {
	if testing.Short() {
		t.Skip("100,000 long-polls: skipped with -short")
	}
	const (
		subscribers = 200
		publishers  = 4
		perPub      = 125
		total       = publishers * perPub
		channel     = "crowd"
	)
	e := newSpecEnv(t, Options{MessageBufferLength: 1000})
	tr := &http.Transport{MaxIdleConnsPerHost: subscribers + publishers + 8}
	client := &http.Client{Transport: tr}
	t.Cleanup(tr.CloseIdleConnections)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()

	target := e.specURL("/sub", channel)
	seen := make([][]string, subscribers)
	errs := make(chan error, subscribers+publishers)
	var wg sync.WaitGroup
	for i := range subscribers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var hdr http.Header
			got := make([]string, 0, total)
			for len(got) < total {
				r := specSend(ctx, client, http.MethodGet, target, nil, hdr)
				if r.Err != nil || r.Status != http.StatusOK {
					errs <- fmt.Errorf("subscriber %d after %d messages: status %d, err %v, body %q", i, len(got), r.Status, r.Err, r.Body)
					cancel()
					return
				}
				got = append(got, string(r.Body)+" "+r.Header.Get("Last-Modified")+" "+r.Header.Get("Etag"))
				hdr = specNextHeaders(r)
			}
			seen[i] = got
		}()
	}
	// Let every subscriber be held before publishing starts, so they walk
	// while messages arrive.
	e.specWaitHeld(channel, subscribers)

	for p := range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range perPub {
				body := []byte(fmt.Sprintf("p%d-%03d", p, n))
				r := specSend(ctx, client, http.MethodPost, e.specURL("/pub", channel), body, nil)
				if r.Err != nil || (r.Status != http.StatusCreated && r.Status != http.StatusAccepted) {
					errs <- fmt.Errorf("publisher %d message %d: status %d, err %v", p, n, r.Status, r.Err)
					cancel()
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.NoError(t, ctx.Err(), "the walk did not finish in time")

	// The reference: the channel's buffer as the store holds it.
	b, err := e.hub.store.Messages(t.Context(), channel, MessageID{}, total+1)
	require.NoError(t, err)
	require.Len(t, b.Messages, total)
	want := make([]string, total)
	next := make([]int, publishers)
	for i, m := range b.Messages {
		want[i] = string(m.Data) + " " + specHTTPDate(m.ID.Time) + " " + strconv.FormatInt(m.ID.Tag, 10)
		var p, n int
		_, err := fmt.Sscanf(string(m.Data), "p%d-%d", &p, &n)
		require.NoError(t, err)
		require.Equal(t, next[p], n, "publisher %d's messages in the order sent", p)
		next[p]++
	}
	for i, got := range seen {
		require.Equal(t, want, got, "subscriber %d", i)
	}
}
