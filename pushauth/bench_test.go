package pushauth_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/pushhub/push"
	"github.com/pushhub/push/pushauth"
)

// BenchmarkAdmission measures subscriber admissions: interval-polls
// (answered 304 at once) over kept-alive connections to a push.Server, with
// no hook, with a token, and with an upstream on loopback.
func BenchmarkAdmission(b *testing.B) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer up.Close()
	tok, _ := pushauth.Mint(key, pushauth.Claims{Prefix: "c", Expires: time.Now().Add(time.Hour)})
	tokens := &pushauth.Tokens{Key: key}
	upstream := &pushauth.Upstream{URL: up.URL, Logger: quiet}
	for _, bc := range []struct {
		name  string
		hook  func(*http.Request, []string) error
		query string
	}{
		{"none", nil, ""},
		{"token", tokens.AuthorizeSubscribe, "&token=" + tok},
		{"auth-url", upstream.AuthorizeSubscribe, ""},
	} {
		b.Run(bc.name, func(b *testing.B) {
			hub := push.New(push.Options{IntervalPoll: true, AuthorizeSubscribe: bc.hook, Logger: quiet})
			srv := httptest.NewUnstartedServer(nil)
			ps := &push.Server{Hub: hub, SubscribePath: "/sub"}
			go ps.Serve(srv.Listener)
			url := "http://" + srv.Listener.Addr().String() + "/sub?id=c1" + bc.query
			tr := &http.Transport{MaxIdleConnsPerHost: 64}
			c := &http.Client{Transport: tr}
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					resp, err := c.Get(url)
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusNotModified {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "admissions/s")
			hub.Shutdown(b.Context())
			ps.Close()
			tr.CloseIdleConnections()
		})
	}
	tr := http.DefaultTransport.(*http.Transport)
	tr.CloseIdleConnections()
}
