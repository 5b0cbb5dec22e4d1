package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"rsc.io/qr"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// clock is a settable time source for the app.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// startApp serves a new app on loopback; clk, if not nil, drives its clock.
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

// newClient is a browser stand-in: an HTTP client with its own cookie jar.
func newClient(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	return &http.Client{Jar: jar, Timeout: 10 * time.Second}
}

type loginInfo struct {
	Channel   string
	QR        string
	URL       string
	ExpiresIn float64
}

func startLogin(t *testing.T, c *http.Client, srv *httptest.Server) loginInfo {
	t.Helper()
	res, err := c.Post(srv.URL+"/login", "", nil)
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	var l loginInfo
	require.NoError(t, json.NewDecoder(res.Body).Decode(&l))
	return l
}

// do sends a request and returns status and body.
func do(t *testing.T, c *http.Client, method, u, contentType, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	require.NoError(t, err)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	res, err := c.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res.StatusCode, string(b)
}

func answer(t *testing.T, c *http.Client, phoneURL, ans, user string) (int, string) {
	t.Helper()
	form := url.Values{"answer": {ans}, "user": {user}}
	return do(t, c, "POST", phoneURL, "application/x-www-form-urlencoded", form.Encode())
}

func exchange(t *testing.T, c *http.Client, srv *httptest.Server, channel, code string) (int, string) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"channel": channel, "code": code})
	return do(t, c, "POST", srv.URL+"/login/exchange", "application/json", string(body))
}

// waitMessage long-polls the login's channel and decodes the message.
func waitMessage(t *testing.T, c *http.Client, srv *httptest.Server, channel string) map[string]string {
	t.Helper()
	status, body := do(t, c, "GET", srv.URL+"/sub?id="+channel, "", "")
	require.Equal(t, http.StatusOK, status, body)
	var m map[string]string
	require.NoError(t, json.Unmarshal([]byte(body), &m))
	return m
}

func TestLoginFlow(t *testing.T) {
	_, srv := startApp(t, nil)
	pc, phone := newClient(t), newClient(t)
	l := startLogin(t, pc, srv)
	assert.Len(t, strings.TrimPrefix(l.Channel, "login-"), 32, "128-bit channel id")
	assert.Equal(t, 120.0, l.ExpiresIn)
	require.True(t, strings.HasPrefix(l.URL, srv.URL+"/m/"), l.URL)

	// The PC waits on its channel while the phone confirms.
	got := make(chan map[string]string, 1)
	go func() {
		res, err := pc.Get(srv.URL + "/sub?id=" + l.Channel)
		if err != nil {
			got <- nil
			return
		}
		defer res.Body.Close()
		var m map[string]string
		json.NewDecoder(res.Body).Decode(&m)
		got <- m
	}()

	status, body := do(t, phone, "GET", l.URL, "", "")
	require.Equal(t, http.StatusOK, status)
	assert.Contains(t, body, "Log in as")
	status, body = answer(t, phone, l.URL, "confirm", "bob")
	require.Equal(t, http.StatusOK, status, body)
	assert.Contains(t, body, "logged in on your computer as bob")

	m := <-got
	require.NotNil(t, m)
	assert.Equal(t, "confirmed", m["event"])
	require.Len(t, m["code"], 32)
	assert.NotContains(t, m, "session", "the push message carries no credential")

	status, body = exchange(t, pc, srv, l.Channel, m["code"])
	require.Equal(t, http.StatusOK, status, body)
	assert.JSONEq(t, `{"user":"bob"}`, body)
	status, body = do(t, pc, "GET", srv.URL+"/me", "", "")
	assert.Equal(t, http.StatusOK, status)
	assert.JSONEq(t, `{"user":"bob"}`, body)

	// The code works once.
	status, _ = exchange(t, pc, srv, l.Channel, m["code"])
	assert.Equal(t, http.StatusForbidden, status)
	// The channel is gone and cannot be subscribed to any more.
	status, _ = do(t, pc, "GET", srv.URL+"/sub?id="+l.Channel, "", "")
	assert.Equal(t, http.StatusForbidden, status)

	// Logging out ends the session.
	status, _ = do(t, pc, "POST", srv.URL+"/logout", "", "")
	assert.Equal(t, http.StatusNoContent, status)
	status, _ = do(t, pc, "GET", srv.URL+"/me", "", "")
	assert.Equal(t, http.StatusUnauthorized, status)
}

func TestReusedQR(t *testing.T) {
	_, srv := startApp(t, nil)
	pc, phone, other := newClient(t), newClient(t), newClient(t)
	l := startLogin(t, pc, srv)
	status, _ := answer(t, phone, l.URL, "confirm", "alice")
	require.Equal(t, http.StatusOK, status)

	// A second confirm, from the same phone or another one, is refused.
	for _, c := range []*http.Client{phone, other} {
		status, body := answer(t, c, l.URL, "confirm", "mallory")
		assert.Equal(t, http.StatusGone, status)
		assert.Contains(t, body, "already used")
		status, body = do(t, c, "GET", l.URL, "", "")
		assert.Equal(t, http.StatusGone, status)
		assert.Contains(t, body, "already used")
	}
	// Only the first answer reached the PC.
	m := waitMessage(t, pc, srv, l.Channel)
	assert.Equal(t, "confirmed", m["event"])
	status, body := exchange(t, pc, srv, l.Channel, m["code"])
	require.Equal(t, http.StatusOK, status)
	assert.JSONEq(t, `{"user":"alice"}`, body)
}

func TestExpiredQR(t *testing.T) {
	clk := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	_, srv := startApp(t, clk)
	pc, phone := newClient(t), newClient(t)
	l := startLogin(t, pc, srv)

	clk.add(loginTTL + time.Second)
	status, body := do(t, phone, "GET", l.URL, "", "")
	assert.Equal(t, http.StatusGone, status)
	assert.Contains(t, body, "expired")
	status, body = answer(t, phone, l.URL, "confirm", "alice")
	assert.Equal(t, http.StatusGone, status)
	assert.Contains(t, body, "expired")
	status, _ = do(t, pc, "GET", srv.URL+"/sub?id="+l.Channel, "", "")
	assert.Equal(t, http.StatusForbidden, status, "an expired login's channel cannot be subscribed to")

	// A QR code long forgotten is simply unknown.
	clk.add(forgetAfter + time.Minute)
	startLogin(t, pc, srv) // sweeps
	status, body = do(t, phone, "GET", l.URL, "", "")
	assert.Equal(t, http.StatusNotFound, status)
	assert.Contains(t, body, "not valid")
}

func TestCodeExpires(t *testing.T) {
	clk := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	_, srv := startApp(t, clk)
	pc, phone := newClient(t), newClient(t)
	l := startLogin(t, pc, srv)
	status, _ := answer(t, phone, l.URL, "confirm", "alice")
	require.Equal(t, http.StatusOK, status)
	m := waitMessage(t, pc, srv, l.Channel)
	clk.add(exchangeTTL + time.Second)
	status, _ = exchange(t, pc, srv, l.Channel, m["code"])
	assert.Equal(t, http.StatusForbidden, status)
}

func TestOnlyTheStarterMaySubscribe(t *testing.T) {
	_, srv := startApp(t, nil)
	pc, other := newClient(t), newClient(t)
	l := startLogin(t, pc, srv)
	startLogin(t, other, srv) // other has a browser cookie of its own

	for name, c := range map[string]*http.Client{"other browser": other, "no cookie": {Timeout: 10 * time.Second}} {
		status, _ := do(t, c, "GET", srv.URL+"/sub?id="+l.Channel, "", "")
		assert.Equal(t, http.StatusForbidden, status, name)
		status, _ = do(t, c, "GET", srv.URL+l.QR, "", "")
		assert.Equal(t, http.StatusNotFound, status, name+": QR image")
	}
	status, _ := do(t, pc, "GET", srv.URL+"/sub?id=login-"+strings.Repeat("0", 32), "", "")
	assert.Equal(t, http.StatusForbidden, status, "unknown channel")
	status, _ = do(t, pc, "GET", srv.URL+"/sub?id="+l.Channel+"&id="+l.Channel, "", "")
	assert.Equal(t, http.StatusForbidden, status, "two channels")

	req, _ := http.NewRequest("GET", srv.URL+l.QR, nil)
	res, err := pc.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.Equal(t, "image/png", res.Header.Get("Content-Type"))
	// The image is the QR code of the phone URL.
	png, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	code, err := qr.Encode(l.URL, qr.M)
	require.NoError(t, err)
	code.Scale = 6
	assert.Equal(t, code.PNG(), png)
}

func TestCodeOnlyForTheStarter(t *testing.T) {
	_, srv := startApp(t, nil)
	pc, phone, thief := newClient(t), newClient(t), newClient(t)
	l := startLogin(t, pc, srv)
	startLogin(t, thief, srv)
	status, _ := answer(t, phone, l.URL, "confirm", "alice")
	require.Equal(t, http.StatusOK, status)
	m := waitMessage(t, pc, srv, l.Channel)

	// Someone who learnt the code cannot use it from another browser...
	status, _ = exchange(t, thief, srv, l.Channel, m["code"])
	assert.Equal(t, http.StatusForbidden, status)
	status, _ = do(t, thief, "GET", srv.URL+"/me", "", "")
	assert.Equal(t, http.StatusUnauthorized, status)
	// ...nor does a wrong code work for the right browser.
	status, _ = exchange(t, pc, srv, l.Channel, strings.Repeat("0", 32))
	assert.Equal(t, http.StatusForbidden, status)
	status, _ = exchange(t, pc, srv, l.Channel, m["code"])
	assert.Equal(t, http.StatusOK, status)
}

func TestDenied(t *testing.T) {
	_, srv := startApp(t, nil)
	pc, phone := newClient(t), newClient(t)
	l := startLogin(t, pc, srv)
	status, body := answer(t, phone, l.URL, "deny", "")
	require.Equal(t, http.StatusOK, status)
	assert.Contains(t, body, "refused")
	m := waitMessage(t, pc, srv, l.Channel)
	assert.Equal(t, map[string]string{"event": "denied"}, m)
	status, _ = answer(t, phone, l.URL, "confirm", "alice")
	assert.Equal(t, http.StatusGone, status)
}

func TestBadAnswers(t *testing.T) {
	_, srv := startApp(t, nil)
	pc, phone := newClient(t), newClient(t)
	l := startLogin(t, pc, srv)
	status, _ := answer(t, phone, l.URL, "confirm", "<script>")
	assert.Equal(t, http.StatusBadRequest, status)

	// A cross-site form post is refused.
	req, _ := http.NewRequest("POST", l.URL, strings.NewReader("answer=confirm&user=eve"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	res, err := phone.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusForbidden, res.StatusCode)

	// The login is still usable.
	status, _ = answer(t, phone, l.URL, "confirm", "alice")
	assert.Equal(t, http.StatusOK, status)
}

// With a public URL, the phone's URL (in the answer and in the QR code)
// is under it, not under the host the computer used (localhost, which a
// phone cannot reach); the phone can use it.
func TestPublicURL(t *testing.T) {
	a, srv := startApp(t, nil)
	a.publicURL = srv.URL + "/" // as a proxy in front would be named; the slash is dropped
	computer := newClient(t)
	l := startLogin(t, computer, srv)
	require.True(t, strings.HasPrefix(l.URL, srv.URL+"/m/"), l.URL)
	require.NotContains(t, l.URL, "//m/")

	a.publicURL = "https://login.example.com"
	l = startLogin(t, computer, srv)
	require.True(t, strings.HasPrefix(l.URL, "https://login.example.com/m/"), l.URL)
	req := httptest.NewRequest(http.MethodGet, "/qr/x", nil)
	require.Equal(t, l.URL[:len("https://login.example.com/m/")]+"tok", a.phoneURL(req, "tok"))
	a.publicURL = ""
	require.Equal(t, "http://example.com/m/tok", a.phoneURL(req, "tok"), "no public URL: the request's host")
}
