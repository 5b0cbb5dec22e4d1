package push

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// P9: POST /pub?id=a&id=b stores the message in each channel with that
// channel's own id; 202 with no subscriber, 201 when any channel had one;
// the body holds each channel's info in the format Accept names.
func TestSpecPublishMany(t *testing.T) {
	e := newSpecEnv(t, Options{})
	e.specPublishOK("a", "only a") // a's next id differs from b's first
	target := e.srv.URL + "/pub?id=a&id=b"

	r := e.specMust(e.specDo(http.MethodPost, target, []byte("both"), http.Header{
		"Content-Type": {"text/plain"}, "Accept": {"application/json"}}))
	require.Equal(t, http.StatusAccepted, r.Status, "%s", r.Body)
	require.Equal(t, "application/json", r.Header.Get("Content-Type"))
	var infos []struct {
		Channel       string `json:"channel"`
		Messages      int    `json:"messages"`
		Requested     int    `json:"requested"`
		Subscribers   int    `json:"subscribers"`
		LastMessageID string `json:"last_message_id"`
	}
	require.NoError(t, json.Unmarshal(r.Body, &infos), "%s", r.Body)
	require.Len(t, infos, 2)
	require.Equal(t, "a", infos[0].Channel)
	require.Equal(t, 2, infos[0].Messages)
	require.Equal(t, "b", infos[1].Channel)
	require.Equal(t, 1, infos[1].Messages)
	require.Equal(t, -1, infos[1].Requested)
	idA, err := ParseMessageID(infos[0].LastMessageID)
	require.NoError(t, err)
	idB, err := ParseMessageID(infos[1].LastMessageID)
	require.NoError(t, err)
	require.NotEqual(t, idA, idB, "a had a message before: its id is not b's")
	for ch, id := range map[string]MessageID{"a": idA, "b": idB} {
		info, err := e.hub.ChannelInfo(t.Context(), ch)
		require.NoError(t, err)
		require.Equal(t, id, info.LastMessageID, "channel %s keeps its own id", ch)
	}
	// Each channel's subscriber walks to the message with its own id.
	got := e.specPoll(e.srv.URL+"/sub?id=b", nil)
	require.Equal(t, "both", string(got.Body))
	require.Equal(t, "text/plain", got.Header.Get("Content-Type"))

	// A held subscriber of b only: 201. The poll above may still count
	// until its handler has returned: wait for it to go first.
	e.specWaitHeld("b", 0)
	held := e.specPollAsync(e.srv.URL+"/sub?id=b&last_event_id="+idB.String(), nil)
	e.specWaitHeld("b", 1)
	r = e.specMust(e.specDo(http.MethodPost, target, []byte("again"), nil))
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	require.Equal(t, "text/plain", r.Header.Get("Content-Type"))
	require.Equal(t, "again", string(specAwait(t, held).Body))
	blocks := strings.Split(string(r.Body), "\r\n\r\n")
	require.Len(t, blocks, 2, "%q", r.Body)
	require.True(t, strings.HasPrefix(blocks[0], "channel: a\r\nqueued messages: 3\r\n"), "%q", blocks[0])
	require.True(t, strings.HasPrefix(blocks[1], "channel: b\r\nqueued messages: 2\r\n"), "%q", blocks[1])
	require.Contains(t, blocks[1], "active subscribers: 1")

	// XML and YAML.
	r = e.specMust(e.specDo(http.MethodPost, e.srv.URL+"/pub?id=a&id=%3Cx%3E", []byte("x"), http.Header{"Accept": {"text/xml"}}))
	require.Equal(t, http.StatusAccepted, r.Status)
	var doc struct {
		XMLName  xml.Name `xml:"channels"`
		Channels []struct {
			ID            string `xml:"id"`
			Messages      int    `xml:"messages"`
			LastMessageID string `xml:"last_message_id"`
		} `xml:"channel"`
	}
	require.NoError(t, xml.Unmarshal(r.Body, &doc), "%s", r.Body)
	require.Len(t, doc.Channels, 2)
	require.Equal(t, "<x>", doc.Channels[1].ID)
	require.Equal(t, 1, doc.Channels[1].Messages)
	r = e.specMust(e.specDo(http.MethodPost, target, []byte("y"), http.Header{"Accept": {"application/yaml"}}))
	require.Equal(t, http.StatusAccepted, r.Status)
	require.True(t, strings.HasPrefix(string(r.Body), "---\r\n- channel: \"a\"\r\n  messages: 5\r\n  requested: "), "%q", r.Body)
	require.Contains(t, string(r.Body), "\r\n- channel: \"b\"\r\n  messages: 3\r\n")

	// JSONP: the JSON array.
	r = e.specMust(e.specDo(http.MethodPost, target+"&callback=cb", []byte("z"), nil))
	require.Equal(t, http.StatusOK, r.Status)
	require.True(t, strings.HasPrefix(string(r.Body), `cb([{"channel": "a", "messages": 6`), "%s", r.Body)

	// A channel named twice gets the message once.
	r = e.specMust(e.specDo(http.MethodPost, e.srv.URL+"/pub?id=c&id=c&id=d", []byte("once"), nil))
	require.Equal(t, http.StatusAccepted, r.Status)
	info, err := e.hub.ChannelInfo(t.Context(), "c")
	require.NoError(t, err)
	require.Equal(t, 1, info.Messages)

	// Only publishing names several channels; a bad id publishes nothing.
	for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodDelete} {
		r = e.specMust(e.specDo(m, target, nil, nil))
		require.Equal(t, http.StatusBadRequest, r.Status, m)
	}
	r = e.specMust(e.specDo(http.MethodPost, e.srv.URL+"/pub?id=fresh&id=%00", []byte("x"), nil))
	require.Equal(t, http.StatusBadRequest, r.Status)
	_, err = e.hub.ChannelInfo(t.Context(), "fresh")
	require.ErrorIs(t, err, ErrChannelNotFound)
}

// P9 with AuthorizePublish: every channel is asked; one refusal refuses
// the whole publish.
func TestSpecPublishManyAuthorize(t *testing.T) {
	e := newSpecEnv(t, Options{AuthorizePublish: func(r *http.Request, channel string) error {
		if channel == "private" {
			return &HTTPError{StatusCode: http.StatusForbidden, Message: "not yours"}
		}
		return nil
	}})
	r := e.specMust(e.specDo(http.MethodPost, e.srv.URL+"/pub?id=public&id=private", []byte("x"), nil))
	require.Equal(t, http.StatusForbidden, r.Status)
	_, err := e.hub.ChannelInfo(t.Context(), "public")
	require.ErrorIs(t, err, ErrChannelNotFound, "nothing published")
}

// Hub.PublishEach: the Go side of P9.
func TestPublishEach(t *testing.T) {
	hub := New(Options{})
	t.Cleanup(func() { hub.Shutdown(context.Background()) })
	ctx := t.Context()
	_, _, err := hub.Publish(ctx, "a", &Message{Data: []byte("first")})
	require.NoError(t, err)
	sub, err := hub.Subscribe(ctx, []string{"b"}, "")
	require.NoError(t, err)
	defer sub.Close()

	msgs, n, err := hub.PublishEach(ctx, []string{"a", "b", "a"}, &Message{Data: []byte("hi"), ContentType: "text/plain"})
	require.NoError(t, err)
	require.Equal(t, 1, n, "b's subscriber")
	require.Len(t, msgs, 2)
	require.Equal(t, "a", msgs[0].Channel)
	require.Equal(t, "b", msgs[1].Channel)
	require.NotEqual(t, msgs[0].ID, msgs[1].ID, "each channel its own id")
	for _, m := range msgs {
		require.Equal(t, "hi", string(m.Data))
		require.Equal(t, "text/plain", m.ContentType)
	}
	got, err := sub.Next(ctx)
	require.NoError(t, err)
	require.Equal(t, msgs[1].ID, got.ID)

	_, _, err = hub.PublishEach(ctx, []string{"c", ""}, &Message{})
	require.Error(t, err)
	_, err = hub.ChannelInfo(ctx, "c")
	require.ErrorIs(t, err, ErrChannelNotFound, "a bad id publishes nothing")
}
