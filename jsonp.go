package push

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// JSONP (S9): every answer is 200 with a script calling the client's
// callback, because script tags ignore statuses.

type jsonpMessage struct {
	ID          string `json:"id"`
	Channel     string `json:"channel"`
	ContentType string `json:"content_type,omitempty"`
	Data        string `json:"data"`
}

// jsonpBody returns the JSON object for m with the given id. Go's JSON
// encoder escapes <, >, &, U+2028 and U+2029, so the result is safe inside
// a script.
func jsonpBody(m *Message, id string) []byte {
	b, _ := json.Marshal(jsonpMessage{ID: id, Channel: m.Channel, ContentType: m.ContentType, Data: string(m.Data)})
	return b
}

// jsonpMessageBody is jsonpBody for single-channel ids, encoded once per message.
func jsonpMessageBody(m *Message) []byte {
	return m.encoded(framingJSONP, func(m *Message) []byte { return jsonpBody(m, m.ID.String()) })
}

func jsonpWrap(callback string, obj []byte) []byte {
	b := make([]byte, 0, len(callback)+len(obj)+3)
	b = append(b, callback...)
	b = append(b, '(')
	b = append(b, obj...)
	return append(b, ");"...)
}

func jsonpError(callback string, code int, text string) []byte {
	t, _ := json.Marshal(text)
	return jsonpWrap(callback, []byte(`{"status":"error","code":`+strconv.Itoa(code)+`,"error":`+string(t)+`}`))
}

func jsonpTimeout(callback, id string) []byte {
	i, _ := json.Marshal(id)
	return jsonpWrap(callback, []byte(`{"id":`+string(i)+`,"status":"timeout"}`))
}

func writeJSONP(w http.ResponseWriter, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/javascript")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	w.Write(body)
}
