module github.com/pushhub/push/cmd/pushload

go 1.24

require github.com/coder/websocket v1.8.15
