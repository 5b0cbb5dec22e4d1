# pushd in a container: a static binary on a distroless base, run as a
# non-root user. Build from the repository's root:
#
#	docker build -t pushd .
#	docker run -p 8080:8080 -p 127.0.0.1:8081:8081 pushd
#
# Subscribers on 8080, publishers (/pub, /status, /metrics) on 8081: publish
# that port to your back end only. Configure with PUSHD_* variables
# (docs/options.md), for example -e PUSHD_REDIS=redis://redis:6379/0.

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY . .
# The modules come from the proxy; the workspace (go.work) builds pushd
# from this checkout's modules.
RUN --mount=type=cache,target=/root/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
	CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags='-s -w' -o /out/pushd ./cmd/pushd
# The build stage checks what the image relies on: a static binary that runs.
RUN /out/pushd -version && ! ldd /out/pushd 2>/dev/null

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/pushd /pushd
USER 65532:65532
ENV PUSHD_ADDR=:8080 \
	PUSHD_PUB_ADDR=:8081 \
	PUSHD_LOG_FORMAT=json
EXPOSE 8080 8081
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s \
	CMD ["/pushd", "-check", "http://127.0.0.1:8080/healthz"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/pushd"]
