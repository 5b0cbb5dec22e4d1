module github.com/pushhub/push

go 1.24
