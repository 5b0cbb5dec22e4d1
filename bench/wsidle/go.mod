module github.com/pushhub/push/bench/wsidle

go 1.24

require (
	github.com/coder/websocket v1.8.15
	github.com/gobwas/ws v1.4.0
)

require (
	github.com/gobwas/httphead v0.1.0 // indirect
	github.com/gobwas/pool v0.2.1 // indirect
)
