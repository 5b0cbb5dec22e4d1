package push

import (
	"strconv"
	"strings"
	"time"
)

// infoFormat is a channel info encoding (P6).
type infoFormat int

const (
	infoPlain infoFormat = iota
	infoJSON
	infoXML
	infoYAML
)

// infoMediaTypes maps the media types a publisher's Accept may name to the
// channel info format; the answer's Content-Type is the one that matched.
var infoMediaTypes = []struct {
	mediaType string
	format    infoFormat
}{
	{"text/plain", infoPlain},
	{"application/json", infoJSON},
	{"text/json", infoJSON},
	{"application/x-json", infoJSON},
	{"text/x-json", infoJSON},
	{"application/xml", infoXML},
	{"text/xml", infoXML},
	{"application/yaml", infoYAML},
	{"text/yaml", infoYAML},
	{"application/x-yaml", infoYAML},
	{"text/x-yaml", infoYAML},
}

// negotiateInfo picks the channel info format for an Accept header: the
// supported media type with the highest quality (the first on ties); plain
// text when none is named.
func negotiateInfo(accept string) (infoFormat, string) {
	best, bestQ, bestType := infoPlain, 0.0, "text/plain"
	for accept != "" {
		var part string
		part, accept, _ = strings.Cut(accept, ",")
		mt, params, _ := strings.Cut(part, ";")
		mt = strings.ToLower(strings.TrimSpace(mt))
		q := 1.0
		for params != "" {
			var p string
			p, params, _ = strings.Cut(params, ";")
			k, v, _ := strings.Cut(p, "=")
			if strings.EqualFold(strings.TrimSpace(k), "q") {
				f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
				if err != nil || !(f >= 0 && f <= 1) { // NaN too
					f = 0
				}
				q = f
			}
		}
		if q <= bestQ {
			continue
		}
		for _, m := range infoMediaTypes {
			if m.mediaType == mt {
				best, bestQ, bestType = m.format, q, m.mediaType
				break
			}
		}
	}
	return best, bestType
}

// formatInfo encodes info in format f; requested is computed at now.
func formatInfo(info ChannelInfo, f infoFormat, now time.Time) []byte {
	requested := int64(-1)
	if !info.LastRequested.IsZero() {
		requested = int64(now.Sub(info.LastRequested) / time.Second)
		if requested < 0 {
			requested = 0
		}
	}
	msgs := strconv.Itoa(info.Messages)
	req := strconv.FormatInt(requested, 10)
	subs := strconv.Itoa(info.Subscribers)
	last := info.LastMessageID.String()
	var s string
	switch f {
	case infoJSON:
		s = `{"messages": ` + msgs + `, "requested": ` + req + `, "subscribers": ` + subs + `, "last_message_id": "` + last + `"}`
	case infoXML:
		s = "<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\r\n<channel>\r\n" +
			"  <messages>" + msgs + "</messages>\r\n" +
			"  <requested>" + req + "</requested>\r\n" +
			"  <subscribers>" + subs + "</subscribers>\r\n" +
			"  <last_message_id>" + last + "</last_message_id>\r\n" +
			"</channel>\r\n"
	case infoYAML:
		s = "---\r\n" +
			"messages: " + msgs + "\r\n" +
			"requested: " + req + "\r\n" +
			"subscribers: " + subs + "\r\n" +
			"last_message_id: \"" + last + "\"\r\n"
	default:
		s = "queued messages: " + msgs + "\r\n" +
			"last requested: " + req + " sec. ago\r\n" +
			"active subscribers: " + subs + "\r\n" +
			"last message id: " + last
	}
	return []byte(s)
}
