package push

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// Shutdown answers every held long-poll (an HTTP answer with the position,
// not a reset), refuses new work, and leaves no goroutine behind.
func TestSpecShutdownAnswersHeld(t *testing.T) {
	before := goleak.IgnoreCurrent()
	e := newSpecEnv(t, Options{})
	e.specPublishOK("s", "m0")
	first := e.specPoll(e.specURL("/sub", "s"), nil)
	e.specWaitHeld("s", 0) // the answered request has let go
	atPos := e.specPollAsync(e.specURL("/sub", "s"), specNextHeaders(first))
	fresh := e.specPollAsync(e.specURL("/sub", "empty"), nil)
	multi := e.specPollAsync(e.srv.URL+"/sub?id=s&id=empty", http.Header{"Last-Event-Id": {specIDOf(t, first) + ",-"}})
	jsonp := e.specPollAsync(e.specURL("/sub", "empty", "callback=cb"), nil)
	e.specWaitHeld("s", 2)
	e.specWaitHeld("empty", 3)
	goSub, err := e.hub.Subscribe(t.Context(), []string{"s"}, specIDOf(t, first))
	require.NoError(t, err)
	goDone := make(chan error, 1)
	go func() {
		defer goSub.Close()
		_, err := goSub.Next(context.Background())
		goDone <- err
	}()

	ctx, cancel := context.WithTimeout(t.Context(), specWait)
	defer cancel()
	require.NoError(t, e.hub.Shutdown(ctx), "every subscriber let go")

	for name, ch := range map[string]<-chan specResp{"at position": atPos, "fresh": fresh, "multi": multi} {
		r := specAwait(t, ch) // an answer, not a transport error
		require.Equal(t, http.StatusServiceUnavailable, r.Status, name)
		require.NotEmpty(t, r.Header.Get("Retry-After"), name)
		require.NotEmpty(t, r.Header.Get("Last-Modified"), "%s: position to resume from", name)
		require.NotEmpty(t, r.Header.Get("Etag"), "%s: position to resume from", name)
		if name == "at position" {
			require.Equal(t, first.Header.Get("Last-Modified"), r.Header.Get("Last-Modified"))
			require.Equal(t, first.Header.Get("Etag"), r.Header.Get("Etag"))
		}
	}
	v := specJSONP(t, specAwait(t, jsonp), "cb")
	require.Equal(t, "error", v["status"])
	require.EqualValues(t, 503, v["code"])
	select {
	case err := <-goDone:
		require.ErrorIs(t, err, ErrHubClosed)
	case <-time.After(specWait):
		require.FailNow(t, "in-process subscription not ended by Shutdown")
	}

	// New work is refused.
	require.Equal(t, http.StatusServiceUnavailable, e.specPoll(e.specURL("/sub", "s"), nil).Status)
	require.Equal(t, http.StatusServiceUnavailable, e.specPublish("s", []byte("late"), "").Status)
	_, _, err = e.hub.Publish(t.Context(), "s", &Message{Data: []byte("late")})
	require.ErrorIs(t, err, ErrHubClosed)
	_, err = e.hub.Subscribe(t.Context(), []string{"s"}, "")
	require.ErrorIs(t, err, ErrHubClosed)
	require.NoError(t, e.hub.Shutdown(ctx), "Shutdown twice")

	e.srv.Close()
	goleak.VerifyNone(t, before)
}

// Shutdown gives up when ctx ends before a subscriber lets go, and still
// stops background work; the subscriber is ended and can close later.
func TestSpecShutdownDeadline(t *testing.T) {
	before := goleak.IgnoreCurrent()
	hub := New(Options{})
	sub, err := hub.Subscribe(t.Context(), []string{"stuck"}, "")
	require.NoError(t, err)

	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, hub.Shutdown(ctx), context.DeadlineExceeded)
	_, err = sub.Next(t.Context())
	require.ErrorIs(t, err, ErrHubClosed)
	sub.Close()
	goleak.VerifyNone(t, before)
}
