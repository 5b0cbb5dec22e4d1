package push

import (
	"context"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"net/url"
	"strconv"
)

// resty.push compatibility (P10, Options.RestyPush): the publisher takes a
// form's field "data" as the message and answers {"status":1}; a JSONP
// subscriber gets the message as a JSON string, and on timeout the string
// {"status":1,"tips":"timeout"}.

// restyContentType is the Content-Type of resty.push's answers.
const restyContentType = "text/javascript;charset=UTF-8"

// restyTimeout is what a resty.push subscriber gets when nothing came in
// time, as a JSON string.
const restyTimeout = `{"status":1,"tips":"timeout"}`

// isForm reports whether r's body is application/x-www-form-urlencoded.
func isForm(r *http.Request) bool {
	ct := headerValue(r.Header, "Content-Type")
	if ct == "" {
		return false
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == "application/x-www-form-urlencoded"
}

// restyMessage turns a form-encoded message into the value of its field
// "data" (text/plain; an empty message when the form has none).
func restyMessage(msg *Message) (*Message, error) {
	form, err := url.ParseQuery(string(msg.Data))
	if err != nil {
		return nil, &HTTPError{StatusCode: http.StatusBadRequest,
			Message: "The form cannot be read (" + err.Error() + "): send the message as the form field data, URL-encoded."}
	}
	msg.Data = []byte(form.Get("data"))
	msg.ContentType = "text/plain"
	return msg, nil
}

// answerResty answers a publish in resty.push's shape: {"status":1}, or
// {"status":0,"tips":"<error>"}, as JSONP when callback is set; always 200
// when callback is set, as script tags need.
func answerResty(w http.ResponseWriter, callback string, err error) {
	status := http.StatusOK
	body := []byte(`{"status":1}`)
	if err != nil {
		tips, _ := json.Marshal(errorText(err))
		body = []byte(`{"status":0,"tips":` + string(tips) + `}`)
		if callback == "" {
			status = statusOf(err)
		}
	}
	if callback != "" {
		body = jsonpWrap(callback, body)
	}
	writeResty(w, status, body)
}

func writeResty(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", restyContentType)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body)
}

// restyString is callback(<s as a JSON string>); Go's JSON encoder escapes
// <, >, &, U+2028 and U+2029, so it is safe inside a script.
func restyString(callback string, s []byte) []byte {
	q, _ := json.Marshal(string(s))
	return jsonpWrap(callback, q)
}

// newestPosition is the position after the newest message of each
// channel: a resty.push subscriber names no position and waits for the
// next message, as resty.push's do.
func (h *Hub) newestPosition(ctx context.Context, channels []string) (position, error) {
	pos := make(position, len(channels))
	for i, ch := range channels {
		info, err := h.store.ChannelInfo(ctx, ch)
		switch {
		case err == nil:
			pos[i] = info.LastMessageID
		case !errors.Is(err, ErrChannelNotFound):
			return nil, err
		}
	}
	return pos, nil
}

// isZero reports whether p names no message in any channel (no id carrier).
func (p position) isZero() bool {
	for _, id := range p {
		if id != (MessageID{}) {
			return false
		}
	}
	return true
}
