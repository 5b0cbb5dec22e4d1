package pushmetrics_test

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/pushhub/push"
	"github.com/pushhub/push/pushmetrics"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// scrape gets url and parses it with Prometheus' text parser.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing %s: %v", url, err)
	}
	return mfs
}

// value is the value of the metric of family name with the label pairs
// given (name, value, ...), or -1 when there is none.
func value(mfs map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	mf := mfs[name]
	if mf == nil {
		return -1
	}
next:
	for _, m := range mf.GetMetric() {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, lp := range m.GetLabel() {
				if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return -1
}

// TestCollector serves a Hub and its metrics on loopback, subscribes with
// EventSource, publishes, and reads the counters move in the scrapes.
func TestCollector(t *testing.T) {
	hub := push.New(push.Options{})
	reg := prometheus.NewRegistry()
	reg.MustRegister(pushmetrics.NewCollector(hub))
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &push.Server{Hub: hub, PublishPath: "/pub", SubscribePath: "/sub", Handler: mux}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		hub.Shutdown(ctx)
		srv.Shutdown(ctx)
		<-served
	}()
	base := "http://" + ln.Addr().String()

	before := scrape(t, base+"/metrics")
	for _, name := range []string{"push_messages_published_total", "push_messages_delivered_total",
		"push_channels", "push_stored_messages", "push_slow_subscribers_dropped_total",
		"push_websocket_pings_unanswered_total", "push_store_errors_total", "push_publish_duration_seconds"} {
		if value(before, name) != 0 {
			t.Errorf("%s = %v before any publish, want 0", name, value(before, name))
		}
	}
	if v := value(before, "push_subscribers", "transport", "eventsource"); v != 0 {
		t.Errorf("push_subscribers{transport=eventsource} = %v, want 0", v)
	}
	if mt := before["push_publish_duration_seconds"].GetType(); mt != dto.MetricType_HISTOGRAM {
		t.Errorf("push_publish_duration_seconds is a %v, want a histogram", mt)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/sub?id=news", nil)
	req.Header.Set("Accept", "text/event-stream")
	sub, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Body.Close()
	if v := value(scrape(t, base+"/metrics"), "push_subscribers", "transport", "eventsource"); v != 1 {
		t.Errorf("push_subscribers{transport=eventsource} = %v with one EventSource open, want 1", v)
	}

	resp, err := http.Post(base+"/pub?id=news", "text/plain", strings.NewReader("hello"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("publish: %s, want 201 Created", resp.Status)
	}
	sc := bufio.NewScanner(sub.Body)
	for sc.Scan() && sc.Text() != "data: hello" {
	}
	if sc.Err() != nil {
		t.Fatal(sc.Err())
	}

	after := scrape(t, base+"/metrics")
	for name, want := range map[string]float64{
		"push_messages_published_total": 1, "push_messages_delivered_total": 1,
		"push_channels": 1, "push_stored_messages": 1, "push_publish_duration_seconds": 1,
	} {
		if v := value(after, name); v != want {
			t.Errorf("%s = %v after a publish and its delivery, want %v", name, v, want)
		}
	}
}
