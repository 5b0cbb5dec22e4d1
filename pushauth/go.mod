module github.com/pushhub/push/pushauth

go 1.24

require github.com/pushhub/push v0.0.0

require github.com/golang-jwt/jwt/v5 v5.3.1

replace github.com/pushhub/push => ../
