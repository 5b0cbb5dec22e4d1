module github.com/pushhub/push

go 1.24

require (
	github.com/coder/websocket v1.8.15 // indirect
	github.com/stretchr/testify v1.12.1 // indirect
	go.uber.org/goleak v1.3.0 // indirect
)
