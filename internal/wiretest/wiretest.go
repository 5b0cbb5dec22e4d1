// Package wiretest parses what subscribers receive, for the tests of the
// modules in this repository that drive push servers as clients (the Redis
// store's multi-node tests and pushd's).
package wiretest

import (
	"bufio"
	"fmt"
	"strings"
)

// A Message is one message as a streaming subscriber saw it: its id
// ("T:G") and payload.
type Message struct{ ID, Data string }

// ParseWSMeta parses a ws+meta.nchan frame,
// "id: T:G\n[content-type: C\n]\n<payload>".
func ParseWSMeta(frame []byte) (Message, error) {
	head, data, ok := strings.Cut(string(frame), "\n\n")
	if !ok {
		return Message{}, fmt.Errorf("ws+meta frame without its blank line: %q", frame)
	}
	m := Message{Data: data}
	for _, line := range strings.Split(head, "\n") {
		if v, ok := strings.CutPrefix(line, "id: "); ok {
			m.ID = v
		}
	}
	return m, nil
}

// ReadEvent returns the next event of an EventSource stream (its id and its
// data lines joined by "\n"), or, as end, a comment ":<code>: <reason>" that
// ends the stream. Other comments are skipped.
func ReadEvent(br *bufio.Reader) (m Message, end string, err error) {
	var data []string
	seen := false
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return Message{}, "", err
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if seen {
				m.Data = strings.Join(data, "\n")
				return m, "", nil
			}
		case line[0] == ':':
			if len(line) > 1 && line[1] >= '0' && line[1] <= '9' {
				return Message{}, line, nil
			}
		default:
			k, v, _ := strings.Cut(line, ":")
			v = strings.TrimPrefix(v, " ")
			switch k {
			case "id":
				m.ID = v
			case "data":
				data = append(data, v)
			default:
				return Message{}, "", fmt.Errorf("unexpected EventSource line %q", line)
			}
			seen = true
		}
	}
}
