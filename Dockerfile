# syntax=docker/dockerfile:1
#
# `plinth serve` for operators: the marketplace and the host on one port.
#
#   docker build -t plinth .
#   docker run -d -p 8080:8080 -v plinth-data:/data plinth                      # SQLite in /data
#   docker run -d -p 8080:8080 -e PLINTH_DATABASE_URL=postgres://… plinth       # PostgreSQL
#
# /data holds the marketplace's signing key, the secrets key (unless PLINTH_SECRETS_KEY is
# set), payout files, compiled components and, without PostgreSQL, the SQLite databases:
# keep it on a volume. See docs/operator.md.

# --- build: the release binary ------------------------------------------------------------
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# rust-toolchain.toml asks for the moving `stable` channel plus the wasm target and tools a
# developer needs; the image's pinned toolchain builds the server binary on its own.
RUN rm rust-toolchain.toml
# Cache mounts keep the registry and the target dir between builds; the binary is copied out
# because the target dir is not part of the layer.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin plinth \
    && install -m 0755 target/release/plinth /usr/local/bin/plinth

# --- run: the binary, a non-root user and a data volume -----------------------------------
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 plinth \
    && useradd --system --uid 10001 --gid plinth --home-dir /data --shell /usr/sbin/nologin plinth \
    && mkdir -p /data \
    && chown plinth:plinth /data
COPY --from=build /usr/local/bin/plinth /usr/local/bin/plinth
USER plinth:plinth
WORKDIR /data
VOLUME ["/data"]
ENV PLINTH_DATA_DIR=/data \
    PLINTH_LISTEN=0.0.0.0:8080 \
    PLINTH_LOG_FORMAT=json \
    PLINTH_LOG=info
EXPOSE 8080
# plinth serve finishes the requests in flight on SIGTERM (docker stop) within --drain-secs.
STOPSIGNAL SIGTERM
ENTRYPOINT ["plinth"]
CMD ["serve"]
