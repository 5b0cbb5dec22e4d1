package pushjs_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/pushhub/push/pushjs"
	"github.com/stretchr/testify/require"
)

func TestHandlerServesTheScript(t *testing.T) {
	srv := httptest.NewServer(pushjs.Handler())
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/static/push.js")
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "text/javascript; charset=utf-8", resp.Header.Get("Content-Type"))
	require.Equal(t, pushjs.Script(), body)
	require.True(t, bytes.Contains(body, []byte("function pushSubscribe")), "the script defines pushSubscribe")

	resp, err = http.Post(srv.URL+"/push.js", "text/plain", nil)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
}
