package push

import (
	"encoding/json"
	"encoding/xml"
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

// infoText holds, per format, the text around the four values of the
// channel info: messages, requested, subscribers, last message id.
var infoText = [...][5]string{
	infoPlain: {"queued messages: ", "\r\nlast requested: ", " sec. ago\r\nactive subscribers: ", "\r\nlast message id: ", ""},
	infoJSON:  {`{"messages": `, `, "requested": `, `, "subscribers": `, `, "last_message_id": "`, `"}`},
	infoXML: {"<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\r\n<channel>\r\n  <messages>", "</messages>\r\n  <requested>",
		"</requested>\r\n  <subscribers>", "</subscribers>\r\n  <last_message_id>", "</last_message_id>\r\n</channel>\r\n"},
	infoYAML: {"---\r\nmessages: ", "\r\nrequested: ", "\r\nsubscribers: ", "\r\nlast_message_id: \"", "\"\r\n"},
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
	t := &infoText[f]
	b = append(b, t[0]...)
	b = strconv.AppendInt(b, int64(info.Messages), 10)
	b = append(b, t[1]...)
	b = strconv.AppendInt(b, requested, 10)
	b = append(b, t[2]...)
	b = strconv.AppendInt(b, int64(info.Subscribers), 10)
	b = append(b, t[3]...)
	b = info.LastMessageID.appendText(b)
	return append(b, t[4]...)
}

// formatInfos encodes the infos of several channels (a publish to several,
// P9) in format f: plain text blocks each headed "channel: ID" and
// separated by an empty line; a JSON array of objects with a "channel"
// field; an XML <channels> list of <channel> elements with an <id>; a YAML
// list of mappings with a "channel" key.
func formatInfos(ids []string, infos []ChannelInfo, f infoFormat, now time.Time) []byte {
	b := make([]byte, 0, 160*len(infos))
	switch f {
	case infoJSON:
		b = append(b, '[')
	case infoXML:
		b = append(b, "<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\r\n<channels>\r\n"...)
	case infoYAML:
		b = append(b, "---\r\n"...)
	}
	for i, info := range infos {
		quoted, _ := json.Marshal(ids[i]) // a JSON string is a YAML double-quoted scalar too
		switch f {
		case infoPlain:
			if i > 0 {
				b = append(b, "\r\n\r\n"...)
			}
			b = append(b, "channel: "...)
			b = append(b, ids[i]...)
			b = append(b, "\r\n"...)
			b = appendInfo(b, info, f, now)
		case infoJSON:
			if i > 0 {
				b = append(b, ", "...)
			}
			b = append(b, `{"channel": `...)
			b = append(b, quoted...)
			b = append(b, ", "...)
			b = append(b, appendInfo(nil, info, f, now)[1:]...) // without its "{"
		case infoXML:
			var id strings.Builder
			xml.EscapeText(&id, []byte(ids[i]))
			b = append(b, "  <channel>\r\n    <id>"...)
			b = append(b, id.String()...)
			b = append(b, "</id>\r\n    <messages>"...)
			b = appendInfoValues(b, info, now, "</messages>\r\n    <requested>", "</requested>\r\n    <subscribers>",
				"</subscribers>\r\n    <last_message_id>", "</last_message_id>\r\n  </channel>\r\n")
		case infoYAML:
			b = append(b, "- channel: "...)
			b = append(b, quoted...)
			b = append(b, "\r\n  messages: "...)
			b = appendInfoValues(b, info, now, "\r\n  requested: ", "\r\n  subscribers: ", "\r\n  last_message_id: \"", "\"\r\n")
		}
	}
	switch f {
	case infoJSON:
		b = append(b, ']')
	case infoXML:
		b = append(b, "</channels>\r\n"...)
	}
	return b
}

// appendInfoValues appends the four values of info, each followed by the
// text given for it.
func appendInfoValues(b []byte, info ChannelInfo, now time.Time, afterMessages, afterRequested, afterSubscribers, afterID string) []byte {
	requested := int64(-1)
	if !info.LastRequested.IsZero() {
		requested = max(int64(now.Sub(info.LastRequested)/time.Second), 0)
	}
	b = strconv.AppendInt(b, int64(info.Messages), 10)
	b = append(b, afterMessages...)
	b = strconv.AppendInt(b, requested, 10)
	b = append(b, afterRequested...)
	b = strconv.AppendInt(b, int64(info.Subscribers), 10)
	b = append(b, afterSubscribers...)
	b = info.LastMessageID.appendText(b)
	return append(b, afterID...)
}
