package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func startApp(t *testing.T, clk *clock) (*app, *httptest.Server) {
	t.Helper()
	a := newApp()
	if clk != nil {
		a.now = clk.now
	}
	srv := httptest.NewServer(a)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		a.hub.Shutdown(ctx)
		srv.Close()
	})
	return a, srv
}

// newClient is a browser stand-in that has loaded the chat page.
func newClient(t *testing.T, srv *httptest.Server) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	status, body := do(t, c, "GET", srv.URL+"/", "")
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, body, "<title>Chat</title>")
	return c
}

func do(t *testing.T, c *http.Client, method, u, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	require.NoError(t, err)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := c.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res.StatusCode, string(b)
}

func send(t *testing.T, c *http.Client, srv *httptest.Server, room, nick, text string) (int, string) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"nick": nick, "text": text})
	return do(t, c, "POST", srv.URL+"/rooms/"+room+"/messages", string(body))
}

// history reads a room's buffered messages by walking it with long-polls,
// as the page does.
func history(t *testing.T, c *http.Client, srv *httptest.Server, room string, n int) []chatMessage {
	t.Helper()
	var out []chatMessage
	lm, etag := "", ""
	for range n {
		req, _ := http.NewRequest("GET", srv.URL+"/sub?room="+room, nil)
		if lm != "" {
			req.Header.Set("If-Modified-Since", lm)
			req.Header.Set("If-None-Match", etag)
		}
		res, err := c.Do(req)
		require.NoError(t, err)
		var m chatMessage
		err = json.NewDecoder(res.Body).Decode(&m)
		res.Body.Close()
		require.Equal(t, http.StatusOK, res.StatusCode)
		require.NoError(t, err)
		assert.Equal(t, "application/json", res.Header.Get("Content-Type"))
		lm, etag = res.Header.Get("Last-Modified"), res.Header.Get("Etag")
		out = append(out, m)
	}
	return out
}

func TestSendAndHistory(t *testing.T) {
	_, srv := startApp(t, nil)
	alice, bob := newClient(t, srv), newClient(t, srv)
	status, body := send(t, alice, srv, "lobby", "alice", "hello")
	require.Equal(t, http.StatusCreated, status, body)
	status, body = send(t, bob, srv, "lobby", " bob ", "  hi alice <b>!</b> ")
	require.Equal(t, http.StatusCreated, status, body)
	status, _ = send(t, bob, srv, "other", "bob", "elsewhere")
	require.Equal(t, http.StatusCreated, status)

	carol := newClient(t, srv)
	msgs := history(t, carol, srv, "lobby", 2)
	assert.Equal(t, "alice", msgs[0].Nick)
	assert.Equal(t, "hello", msgs[0].Text)
	assert.Equal(t, "bob", msgs[1].Nick)
	assert.Equal(t, "hi alice <b>!</b>", msgs[1].Text)
	assert.False(t, msgs[1].Time.IsZero())

	status, body = do(t, carol, "GET", srv.URL+"/rooms/lobby", "")
	require.Equal(t, http.StatusOK, status)
	assert.JSONEq(t, `{"room":"lobby","members":0,"messages":2}`, body)
	status, body = do(t, carol, "GET", srv.URL+"/rooms/empty", "")
	require.Equal(t, http.StatusOK, status)
	assert.JSONEq(t, `{"room":"empty","members":0,"messages":0}`, body)
}

func TestHistoryKeepsTheLastN(t *testing.T) {
	clk := &clock{t: time.Now()}
	_, srv := startApp(t, clk)
	c := newClient(t, srv)
	for i := range historyLength + 3 {
		clk.add(refill) // stay within the rate limit
		status, _ := send(t, c, srv, "busy", "bot", "message "+strconv.Itoa(i))
		require.Equal(t, http.StatusCreated, status)
	}
	msgs := history(t, c, srv, "busy", historyLength)
	assert.Equal(t, "message 3", msgs[0].Text, "the oldest kept is the 4th sent")
}

func TestMemberCount(t *testing.T) {
	_, srv := startApp(t, nil)
	alice, bob := newClient(t, srv), newClient(t, srv)
	// bob waits in the room (a held long-poll) while alice sends.
	done := make(chan chatMessage, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/sub?room=lobby", nil)
		res, err := bob.Do(req)
		if err != nil {
			close(done)
			return
		}
		defer res.Body.Close()
		var m chatMessage
		json.NewDecoder(res.Body).Decode(&m)
		done <- m
	}()
	// There is no event for "bob's request is being held": ask the room.
	require.Eventually(t, func() bool {
		_, body := do(t, alice, "GET", srv.URL+"/rooms/lobby", "")
		return strings.Contains(body, `"members":1`)
	}, 5*time.Second, 10*time.Millisecond)
	status, _ := send(t, alice, srv, "lobby", "alice", "anyone?")
	require.Equal(t, http.StatusCreated, status)
	m := <-done
	assert.Equal(t, "anyone?", m.Text)
	assert.Equal(t, 1, m.Members, "the message says how many were in the room")
}

func TestValidation(t *testing.T) {
	_, srv := startApp(t, nil)
	c := newClient(t, srv)
	for _, tc := range []struct {
		name, room, nick, text string
		status                 int
		says                   string
	}{
		{"empty text", "lobby", "alice", "   ", 400, "empty"},
		{"long text", "lobby", "alice", strings.Repeat("é", maxTextRunes+1), 400, "too long"},
		{"longest text", "lobby", "alice", strings.Repeat("é", maxTextRunes), 201, ""},
		{"control characters", "lobby", "alice", "a\x00b", 400, "control"},
		{"empty nick", "lobby", "", "hi", 400, "nickname"},
		{"long nick", "lobby", strings.Repeat("a", maxNickRunes+1), "hi", 400, "nickname"},
		{"html nick", "lobby", "<img>", "hi", 400, "nickname"},
		{"unicode nick", "lobby", "Zoë 2", "hi", 201, ""},
		{"bad room", "Lobby!", "alice", "hi", 404, "room name"},
	} {
		status, body := send(t, c, srv, tc.room, tc.nick, tc.text)
		assert.Equal(t, tc.status, status, tc.name)
		assert.Contains(t, body, tc.says, tc.name)
	}
	status, _ := do(t, c, "POST", srv.URL+"/rooms/lobby/messages", "not json")
	assert.Equal(t, http.StatusBadRequest, status)
}

func TestRateLimit(t *testing.T) {
	clk := &clock{t: time.Now()}
	_, srv := startApp(t, clk)
	alice, bob := newClient(t, srv), newClient(t, srv)
	for i := range burst {
		status, _ := send(t, alice, srv, "lobby", "alice", "spam")
		require.Equal(t, http.StatusCreated, status, "message %d of the burst", i)
	}
	req, _ := http.NewRequest("POST", srv.URL+"/rooms/lobby/messages", strings.NewReader(`{"nick":"alice","text":"more"}`))
	res, err := alice.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusTooManyRequests, res.StatusCode)
	assert.Equal(t, "1", res.Header.Get("Retry-After"))

	// The limit is per client: bob is not affected...
	status, _ := send(t, bob, srv, "lobby", "bob", "hi")
	assert.Equal(t, http.StatusCreated, status)
	// ...nor does changing nickname help alice.
	status, _ = send(t, alice, srv, "lobby", "notalice", "spam")
	assert.Equal(t, http.StatusTooManyRequests, status)
	// A token comes back every refill.
	clk.add(refill)
	status, _ = send(t, alice, srv, "lobby", "alice", "later")
	assert.Equal(t, http.StatusCreated, status)
	status, _ = send(t, alice, srv, "lobby", "alice", "too soon")
	assert.Equal(t, http.StatusTooManyRequests, status)

	// The refused messages were not published.
	msgs := history(t, bob, srv, "lobby", burst+2)
	assert.Equal(t, "later", msgs[len(msgs)-1].Text)
}

func TestAccess(t *testing.T) {
	_, srv := startApp(t, nil)
	stranger := &http.Client{Timeout: 10 * time.Second} // never loaded the page: no cookie
	status, _ := do(t, stranger, "GET", srv.URL+"/sub?room=lobby", "")
	assert.Equal(t, http.StatusForbidden, status)
	status, _ = send(t, stranger, srv, "lobby", "eve", "hi")
	assert.Equal(t, http.StatusForbidden, status)

	c := newClient(t, srv)
	status, _ = do(t, c, "GET", srv.URL+"/sub?id=room:lobby", "")
	assert.Equal(t, http.StatusNotFound, status, "channels are named by room only")
	status, body := do(t, c, "GET", srv.URL+"/sub?room=../x", "")
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Contains(t, body, "room name")

	// A forged client cookie is refused.
	jar, _ := cookiejar.New(nil)
	forged := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	req, _ := http.NewRequest("GET", srv.URL+"/sub?room=lobby", nil)
	req.AddCookie(&http.Cookie{Name: clientCookie, Value: strings.Repeat("0", 32) + "." + strings.Repeat("0", 32)})
	res, err := forged.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusForbidden, res.StatusCode)

	// A cross-site post is refused.
	req, _ = http.NewRequest("POST", srv.URL+"/rooms/lobby/messages", strings.NewReader(`{"nick":"a","text":"b"}`))
	req.Header.Set("Origin", "https://evil.example")
	res, err = c.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusForbidden, res.StatusCode)
}
