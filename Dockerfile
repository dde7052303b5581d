# syntax=docker/dockerfile:1
FROM golang:1.26 AS build
WORKDIR /src
# The source is bind-mounted, not copied: nothing in the build context (the .env beside
# docker-compose.yml holds every secret) ends up in an image layer or the layer cache.
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=bind,source=go.mod,target=go.mod \
    --mount=type=bind,source=go.sum,target=go.sum \
    go mod download
# -buildvcs=false: a bind-mounted .git belongs to another user, which git refuses to read.
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    --mount=type=bind,target=. \
    CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags="-s -w" -o /out/breachflow ./cmd/breachflow

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/breachflow /usr/local/bin/breachflow
USER nonroot:nonroot
# The API only. The mail sink (8025, dev) and /metrics (9090) are not for `docker run -P`.
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/breachflow"]
CMD ["serve"]
