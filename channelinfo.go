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

// infoContentType holds the Content-Type header value of each media type
// of infoMediaTypes, shared by every answer (header values are not
// modified once set).
var infoContentType = func() map[string][]string {
	m := make(map[string][]string, len(infoMediaTypes))
	for _, t := range infoMediaTypes {
		m[t.mediaType] = []string{t.mediaType}
	}
	return m
}()

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
	return appendInfo(make([]byte, 0, 128), info, f, now)
}

// appendInfo appends info encoded in format f to b.
func appendInfo(b []byte, info ChannelInfo, f infoFormat, now time.Time) []byte {
	requested := int64(-1)
	if !info.LastRequested.IsZero() {
		requested = int64(now.Sub(info.LastRequested) / time.Second)
		if requested < 0 {
			requested = 0
		}
	}
	msgs, subs := int64(info.Messages), int64(info.Subscribers)
	switch f {
	case infoJSON:
		b = append(b, `{"messages": `...)
		b = strconv.AppendInt(b, msgs, 10)
		b = append(b, `, "requested": `...)
		b = strconv.AppendInt(b, requested, 10)
		b = append(b, `, "subscribers": `...)
		b = strconv.AppendInt(b, subs, 10)
		b = append(b, `, "last_message_id": "`...)
		b = info.LastMessageID.appendText(b)
		return append(b, `"}`...)
	case infoXML:
		b = append(b, "<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\r\n<channel>\r\n  <messages>"...)
		b = strconv.AppendInt(b, msgs, 10)
		b = append(b, "</messages>\r\n  <requested>"...)
		b = strconv.AppendInt(b, requested, 10)
		b = append(b, "</requested>\r\n  <subscribers>"...)
		b = strconv.AppendInt(b, subs, 10)
		b = append(b, "</subscribers>\r\n  <last_message_id>"...)
		b = info.LastMessageID.appendText(b)
		return append(b, "</last_message_id>\r\n</channel>\r\n"...)
	case infoYAML:
		b = append(b, "---\r\nmessages: "...)
		b = strconv.AppendInt(b, msgs, 10)
		b = append(b, "\r\nrequested: "...)
		b = strconv.AppendInt(b, requested, 10)
		b = append(b, "\r\nsubscribers: "...)
		b = strconv.AppendInt(b, subs, 10)
		b = append(b, "\r\nlast_message_id: \""...)
		b = info.LastMessageID.appendText(b)
		return append(b, "\"\r\n"...)
	}
	b = append(b, "queued messages: "...)
	b = strconv.AppendInt(b, msgs, 10)
	b = append(b, "\r\nlast requested: "...)
	b = strconv.AppendInt(b, requested, 10)
	b = append(b, " sec. ago\r\nactive subscribers: "...)
	b = strconv.AppendInt(b, subs, 10)
	b = append(b, "\r\nlast message id: "...)
	return info.LastMessageID.appendText(b)
}
