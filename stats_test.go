package push_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/pushhub/push"
)

// failingStore is a MemoryStore whose Publish fails as an unreachable
// Redis does.
type failingStore struct{ *push.MemoryStore }

func (failingStore) Publish(context.Context, string, *push.Message, push.ChannelConfig) (*push.Message, push.ChannelInfo, error) {
	return nil, push.ChannelInfo{}, fmt.Errorf("test store: %w", push.ErrStoreUnavailable)
}

// TestStatsCounters: Stats counts subscribers by transport, publishes in
// its latency histogram, and publishes that failed on the store.
func TestStatsCounters(t *testing.T) {
	hub := haNewHub(t, push.Options{})
	addr := haServeServer(t, hub, "/pub", "/sub", nil)
	ctx, cancel := context.WithTimeout(context.Background(), haWait)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/sub?id=s", nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	st, err := hub.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.SubscribersByTransport["eventsource"] != 1 || st.Subscribers != 1 || len(st.SubscribersByTransport) != 6 {
		t.Errorf("with one EventSource open: Subscribers %d, SubscribersByTransport %v", st.Subscribers, st.SubscribersByTransport)
	}
	for range 3 {
		if _, _, err := hub.Publish(ctx, "s", &push.Message{Data: []byte("m")}); err != nil {
			t.Fatal(err)
		}
	}
	st, _ = hub.Stats(ctx)
	h := st.PublishLatency
	if h.Count != 3 || h.Counts[len(h.Counts)-1] > 3 || len(h.Counts) != len(h.Bounds) || h.Sum <= 0 {
		t.Errorf("PublishLatency after 3 publishes: %+v", h)
	}
	for i := 1; i < len(h.Counts); i++ {
		if h.Counts[i] < h.Counts[i-1] || h.Bounds[i] <= h.Bounds[i-1] {
			t.Errorf("PublishLatency is not cumulative over increasing bounds: %+v", h)
		}
	}

	ms := push.NewMemoryStore()
	t.Cleanup(func() { ms.Close() }) // after the Hub's Shutdown: cleanups run last first
	failing := haNewHub(t, push.Options{Store: failingStore{ms}})
	faddr := haServeServer(t, failing, "/pub", "/sub", nil)
	pr, err := http.Post("http://"+faddr+"/pub?id=x", "text/plain", strings.NewReader("m"))
	if err != nil {
		t.Fatal(err)
	}
	pr.Body.Close()
	if pr.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("publish on a failing store: %s, want 503", pr.Status)
	}
	fst, _ := failing.Stats(ctx)
	if fst.StoreErrors != 1 || fst.Published != 0 || fst.PublishLatency.Count != 0 {
		t.Errorf("after a publish the store refused: StoreErrors %d, Published %d, PublishLatency.Count %d; want 1, 0, 0",
			fst.StoreErrors, fst.Published, fst.PublishLatency.Count)
	}
}
