module github.com/pushhub/push/cmd/pushd

go 1.24

require github.com/pushhub/push v0.0.0

require github.com/coder/websocket v1.8.15 // indirect

replace github.com/pushhub/push => ../..
