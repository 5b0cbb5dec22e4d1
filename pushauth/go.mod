module github.com/pushhub/push/pushauth

go 1.24

require github.com/pushhub/push v0.1.0

require (
	github.com/coder/websocket v1.8.15
	github.com/golang-jwt/jwt/v5 v5.3.1
	go.uber.org/goleak v1.3.0
)

