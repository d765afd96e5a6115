# The egress-proxy image: a release build in the Rust image, run from a small
# Debian image as a non-root user. Used by docker-compose.yml.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p egress-proxy \
 && cp target/release/egress-proxy /usr/local/bin/egress-proxy

FROM debian:bookworm-slim
# ca-certificates: TLS to a real AWS upstream; curl: the healthcheck.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/egress-proxy --shell /usr/sbin/nologin egress \
 && mkdir -p /var/lib/egress-proxy \
 && chown egress:egress /var/lib/egress-proxy
COPY --from=build /usr/local/bin/egress-proxy /usr/local/bin/egress-proxy
USER egress
WORKDIR /var/lib/egress-proxy
# Inside the container the listeners must take connections from outside it;
# publish them on 127.0.0.1 only (docker-compose.yml does).
ENV EGRESS_DATA_DIR=/var/lib/egress-proxy \
    EGRESS_LISTEN=0.0.0.0:9000 \
    EGRESS_ADMIN_LISTEN=0.0.0.0:9001
VOLUME ["/var/lib/egress-proxy"]
EXPOSE 9000 9001
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD curl -fsS http://127.0.0.1:9001/healthz || exit 1
ENTRYPOINT ["egress-proxy"]
CMD ["serve"]
