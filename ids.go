package push

import (
	"errors"
	"strconv"
	"strings"
)

// MessageID identifies a message within its channel. Its text form is "T:G":
// T is the publish time in whole Unix seconds and G is a tag that is 0 for the
// first message of that second in the channel and counts up for further
// messages in the same second. Ids are strictly increasing within a channel
// for the channel's whole life (spec I1). The zero MessageID is older than
// every message and means "no position".
type MessageID struct {
	Time int64 // Unix seconds of the publish time
	Tag  int64 // order within the same second, from 0
}

// String returns the id as "T:G".
func (id MessageID) String() string {
	return string(id.appendText(make([]byte, 0, 24)))
}

func (id MessageID) appendText(b []byte) []byte {
	b = strconv.AppendInt(b, id.Time, 10)
	b = append(b, ':')
	return strconv.AppendInt(b, id.Tag, 10)
}

// IsZero reports whether id is the zero MessageID (no position).
func (id MessageID) IsZero() bool { return id.Time == 0 && id.Tag == 0 }

// Compare returns -1, 0 or +1 as id is older than, equal to or newer than other.
func (id MessageID) Compare(other MessageID) int {
	switch {
	case id.Time < other.Time:
		return -1
	case id.Time > other.Time:
		return 1
	case id.Tag < other.Tag:
		return -1
	case id.Tag > other.Tag:
		return 1
	}
	return 0
}

// ErrInvalidMessageID is returned when a message id in a request cannot be
// parsed. Subscriber handlers answer it with 400 "Message ID invalid".
var ErrInvalidMessageID = errors.New("push: invalid message id")

// invalidMessageIDText is how the handlers answer ErrInvalidMessageID
// (Nchan's words).
const invalidMessageIDText = "Message ID invalid"

// ParseMessageID parses the text form "T:G" of a single-channel message id.
func ParseMessageID(s string) (MessageID, error) {
	t, g, ok := strings.Cut(s, ":")
	if !ok {
		return MessageID{}, ErrInvalidMessageID
	}
	tv, ok1 := parseTime(t)
	gv, ok2 := parseDecimal(g)
	if !ok1 || !ok2 {
		return MessageID{}, ErrInvalidMessageID
	}
	return MessageID{Time: tv, Tag: gv}, nil
}

// maxIDTime is the last second an HTTP-date can name (9999-12-31 23:59:59
// UTC). An id time beyond it could not travel as Last-Modified (I2), so
// such ids are invalid.
const maxIDTime = 253402300799

// parseTime parses the time part of an id: a decimal of at most maxIDTime.
func parseTime(s string) (int64, bool) {
	t, ok := parseDecimal(s)
	return t, ok && t <= maxIDTime
}

// parseDecimal parses a non-negative decimal integer made of ASCII digits only
// (no sign, no spaces) that fits in an int64.
func parseDecimal(s string) (int64, bool) {
	if s == "" || len(s) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// A position is where a subscription stands: one MessageID per channel, in
// the order of the subscription's channels. A zero entry means "no position
// yet": the subscription starts at the oldest buffered message of that channel.
//
// Text forms (spec I5, documented in docs/protocol.md):
//
//	single channel:    T:G
//	several channels:  T:E1,E2,...,Ek
//
// where each entry Ei is the position in channel i: "G" when that position's
// time equals T, "t.G" when it has another time t, "-" when there is no
// position in that channel, and any entry may be wrapped in brackets "[...]"
// to mark the channel whose message this id belongs to (we write it; we
// ignore it when reading). The part after the first colon is what long-poll
// answers carry in Etag, and T is their Last-Modified, so
// "<seconds of Last-Modified>:<Etag>" is the id, as NchanSubscriber.js builds it.
type position []MessageID

// formatPosition writes the text form of pos. T is the time of the entry at
// index mark (the channel the message came from), which is bracketed when
// there are several channels.
func formatPosition(pos position, mark int) string {
	if len(pos) == 1 {
		return pos[0].String()
	}
	base := pos[mark].Time
	b := make([]byte, 0, 16+len(pos)*4)
	b = strconv.AppendInt(b, base, 10)
	b = append(b, ':')
	b = appendEntries(b, pos, mark, base)
	return string(b)
}

// splitPosition returns the Last-Modified seconds and the Etag text of pos.
func splitPosition(pos position, mark int) (int64, string) {
	if len(pos) == 1 {
		return pos[0].Time, strconv.FormatInt(pos[0].Tag, 10)
	}
	base := pos[mark].Time
	return base, string(appendEntries(nil, pos, mark, base))
}

func appendEntries(b []byte, pos position, mark int, base int64) []byte {
	for i, id := range pos {
		if i > 0 {
			b = append(b, ',')
		}
		if i == mark {
			b = append(b, '[')
		}
		switch {
		case id.IsZero():
			b = append(b, '-')
		case id.Time == base:
			b = strconv.AppendInt(b, id.Tag, 10)
		default:
			b = strconv.AppendInt(b, id.Time, 10)
			b = append(b, '.')
			b = strconv.AppendInt(b, id.Tag, 10)
		}
		if i == mark {
			b = append(b, ']')
		}
	}
	return b
}

// parsePosition parses the text form of a position for a subscription to n
// channels. A single-channel id "T:G" given to a subscription of several
// channels is refused, as is a compound id whose entry count is not n.
func parsePosition(s string, n int) (position, error) {
	t, rest, ok := strings.Cut(s, ":")
	if !ok {
		return nil, ErrInvalidMessageID
	}
	base, ok := parseTime(t)
	if !ok {
		return nil, ErrInvalidMessageID
	}
	return parseEntries(base, rest, n)
}

// parseEntries parses the part after the colon of a position (the Etag of a
// long-poll answer) given the base time T.
func parseEntries(base int64, s string, n int) (position, error) {
	if n == 1 {
		s = trimBrackets(s)
		g, ok := parseDecimal(s)
		if !ok {
			return nil, ErrInvalidMessageID
		}
		return position{{Time: base, Tag: g}}, nil
	}
	parts := strings.Split(s, ",")
	if len(parts) != n {
		return nil, ErrInvalidMessageID
	}
	pos := make(position, n)
	for i, e := range parts {
		e = trimBrackets(e)
		switch {
		case e == "-":
		case strings.Contains(e, "."):
			ts, gs, _ := strings.Cut(e, ".")
			tv, ok1 := parseTime(ts)
			gv, ok2 := parseDecimal(gs)
			if !ok1 || !ok2 {
				return nil, ErrInvalidMessageID
			}
			pos[i] = MessageID{Time: tv, Tag: gv}
		default:
			g, ok := parseDecimal(e)
			if !ok {
				return nil, ErrInvalidMessageID
			}
			pos[i] = MessageID{Time: base, Tag: g}
		}
	}
	return pos, nil
}

func trimBrackets(s string) string {
	if len(s) >= 2 && s[0] == '[' && s[len(s)-1] == ']' {
		return s[1 : len(s)-1]
	}
	return s
}
