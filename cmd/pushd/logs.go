package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/redis/go-redis/v9"
)

// newLogger returns pushd's logger: text (key=value) or json (one object a
// line) on w, at level.
func newLogger(w io.Writer, format string, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// redisLogger passes the Redis client's own logs (a lost connection, a
// pool that cannot dial) to pushd's logger, at the warn level.
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.WarnContext(ctx, strings.TrimSpace(fmt.Sprintf(format, v...)), "component", "redis-client")
}

// logRedisTo sends the Redis client's logs to log. The client's logger is
// one for the process.
func logRedisTo(log *slog.Logger) { redis.SetLogger(redisLogger{log}) }
