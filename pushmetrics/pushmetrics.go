// Package pushmetrics exports a push.Hub's counters to Prometheus.
//
// Register a Collector with a registry and serve the registry with
// promhttp:
//
//	reg := prometheus.NewRegistry()
//	reg.MustRegister(pushmetrics.NewCollector(hub),
//		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
//	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
//
// The metrics, all read from Hub.Stats when Prometheus scrapes:
//
//	push_subscribers{transport}                 gauge: subscriptions open, by transport
//	push_channels                                gauge: channels in the store
//	push_stored_messages                         gauge: messages in the store
//	push_messages_published_total                counter: messages published through this Hub
//	push_messages_delivered_total                counter: messages handed to this Hub's subscribers
//	push_slow_subscribers_dropped_total          counter: subscribers cut for writes slower than WriteTimeout
//	push_websocket_pings_unanswered_total        counter: WebSocket subscribers cut for a ping left unanswered
//	push_store_errors_total                      counter: operations failed on a store error
//	push_publish_duration_seconds                histogram: how long publishes took
//
// push_channels and push_stored_messages are left out of a scrape when
// the store cannot count them (Redis unreachable); the others are always
// there.
package pushmetrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/pushhub/push"
)

// A Collector is a prometheus.Collector of a Hub's counters. Create it
// with NewCollector.
type Collector struct {
	hub *push.Hub
	// Timeout bounds how long a scrape waits for the store to count its
	// channels and messages (Redis scans its keys). NewCollector sets 5s.
	Timeout time.Duration
}

// NewCollector returns a Collector of hub's counters.
func NewCollector(hub *push.Hub) *Collector {
	return &Collector{hub: hub, Timeout: 5 * time.Second}
}

var (
	descSubscribers = prometheus.NewDesc("push_subscribers",
		"Subscriptions open now through the subscriber handler, by transport.", []string{"transport"}, nil)
	descChannels = prometheus.NewDesc("push_channels",
		"Channels the store holds.", nil, nil)
	descMessages = prometheus.NewDesc("push_stored_messages",
		"Messages the store holds.", nil, nil)
	descPublished = prometheus.NewDesc("push_messages_published_total",
		"Messages published through this Hub.", nil, nil)
	descDelivered = prometheus.NewDesc("push_messages_delivered_total",
		"Messages handed to this Hub's subscribers.", nil, nil)
	descSlow = prometheus.NewDesc("push_slow_subscribers_dropped_total",
		"Streaming subscribers disconnected because a write took longer than the write timeout.", nil, nil)
	descPings = prometheus.NewDesc("push_websocket_pings_unanswered_total",
		"WebSocket subscribers disconnected because they did not answer a ping in time.", nil, nil)
	descStoreErrors = prometheus.NewDesc("push_store_errors_total",
		"Publishes, subscribes and subscriptions that failed on an error of the store.", nil, nil)
	descPublish = prometheus.NewDesc("push_publish_duration_seconds",
		"How long publishes took, from the store's call to the hand-over to this Hub's subscribers.", nil, nil)
)

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descSubscribers, descChannels, descMessages, descPublished,
		descDelivered, descSlow, descPings, descStoreErrors, descPublish} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx := context.Background()
	if c.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.Timeout)
		defer cancel()
	}
	st, err := c.hub.Stats(ctx)
	for t, n := range st.SubscribersByTransport {
		ch <- prometheus.MustNewConstMetric(descSubscribers, prometheus.GaugeValue, float64(n), t)
	}
	if err == nil {
		ch <- prometheus.MustNewConstMetric(descChannels, prometheus.GaugeValue, float64(st.Channels))
		ch <- prometheus.MustNewConstMetric(descMessages, prometheus.GaugeValue, float64(st.Messages))
	}
	ch <- prometheus.MustNewConstMetric(descPublished, prometheus.CounterValue, float64(st.Published))
	ch <- prometheus.MustNewConstMetric(descDelivered, prometheus.CounterValue, float64(st.Delivered))
	ch <- prometheus.MustNewConstMetric(descSlow, prometheus.CounterValue, float64(st.SlowDropped))
	ch <- prometheus.MustNewConstMetric(descPings, prometheus.CounterValue, float64(st.PingTimeouts))
	ch <- prometheus.MustNewConstMetric(descStoreErrors, prometheus.CounterValue, float64(st.StoreErrors))
	h := st.PublishLatency
	buckets := make(map[float64]uint64, len(h.Bounds))
	for i, b := range h.Bounds {
		buckets[b] = h.Counts[i]
	}
	ch <- prometheus.MustNewConstHistogram(descPublish, h.Count, h.Sum, buckets)
}
