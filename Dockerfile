# Multi-stage build: compile the release binary, then run it on a slim image as
# a non-root user. `.ci/run` runs the build stage's commands on exactly the
# files its COPY lines bring in (without the cache mounts), so a missing COPY
# fails CI.
#
# The registry and the target directory are BuildKit cache mounts: a source
# change rebuilds the service's own crates, not every dependency. The binary
# is copied out of the cached target directory, which is not in the layer.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY migration ./migration
COPY bench ./bench
COPY assets ./assets
COPY src ./src
RUN --mount=type=cache,target=/usr/local/cargo/registry --mount=type=cache,target=/src/target cargo build --release --locked --bin itsm && cp "${CARGO_TARGET_DIR:-target}/release/itsm" ./itsm

FROM debian:bookworm-slim
# The system's certificate authorities: an S3-compatible attachment store over
# HTTPS is verified against them.
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10001 --user-group --home-dir /data --create-home itsm
COPY --from=build /src/itsm /usr/local/bin/itsm
USER itsm
WORKDIR /data
# Configure with ITSM_* variables; see the README for the full table. With the
# SQLite default, mount a volume on /data to keep the database.
ENV ITSM_LISTEN=0.0.0.0:8080 \
    ITSM_DATABASE_URL=sqlite:///data/itsm.db \
    ITSM_LOG_FORMAT=json
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["itsm", "healthcheck"]
ENTRYPOINT ["itsm"]
CMD ["serve"]
