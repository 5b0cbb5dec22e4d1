module github.com/pushhub/push/cmd/pushd

go 1.24

require (
	github.com/coder/websocket v1.8.15
	github.com/pushhub/push v0.0.0
	github.com/pushhub/push/pushauth v0.0.0
	github.com/pushhub/push/redisstore v0.0.0
	github.com/stretchr/testify v1.12.1
)

require (
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/golang-jwt/jwt/v5 v5.3.1 // indirect
	github.com/redis/go-redis/v9 v9.22.0 // indirect
	go.uber.org/atomic v1.11.0 // indirect
	go.yaml.in/yaml/v3 v3.0.6 // indirect
	golang.org/x/sys v0.34.0 // indirect
)

replace (
	github.com/pushhub/push => ../..
	github.com/pushhub/push/pushauth => ../../pushauth
	github.com/pushhub/push/redisstore => ../../redisstore
)
