# syntax=docker/dockerfile:1
#
# sluice: one binary (gateway + convert stage + notify stage). Built with BuildKit (the default builder of
# current Docker): `docker build -t sluice .`, or `docker compose up --build` with docker-compose.yml.

FROM rust:1.95-bookworm AS builder
# cmake and nasm build libjpeg-turbo (with its SIMD code) for the `turbojpeg` feature: JPEG decoding and
# encoding several times faster than the pure-Rust codecs a plain `cargo build` uses.
RUN apt-get update \
    && apt-get install -y --no-install-recommends cmake nasm \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# The cargo registry and the target folder live in BuildKit cache mounts, so a rebuild after a source change
# recompiles only the workspace crates. A cache mount is not part of the image, hence the copy out of it.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked -p sluice --features turbojpeg \
    && install -D -m 0755 target/release/sluice /out/sluice

FROM debian:bookworm-slim AS runtime
# ca-certificates: TLS to real S3 endpoints and mail relays. curl: the HEALTHCHECK below.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 sluice \
    && useradd --system --uid 10001 --gid sluice --home-dir /data --shell /usr/sbin/nologin sluice \
    && mkdir -p /data /etc/sluice \
    && chown sluice:sluice /data
COPY --from=builder /out/sluice /usr/local/bin/sluice
COPY config/docker.toml /etc/sluice/docker.toml
ENV SLUICE_CONFIG=/etc/sluice/docker.toml
# Relative paths of the config (local storage, the .eml outbox) land here when someone switches to them.
WORKDIR /data
VOLUME ["/data"]
USER sluice:sluice
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:8080/healthz"]
ENTRYPOINT ["sluice"]
CMD ["serve"]
