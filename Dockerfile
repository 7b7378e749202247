# Multi-stage build: compile the release binary, then run it on a slim image as
# a non-root user. `.ci/run` runs the build stage's cargo command on exactly
# the files its COPY lines bring in, so a missing COPY fails CI.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY migration ./migration
COPY bench ./bench
COPY src ./src
RUN cargo build --release --locked --bin itsm

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --user-group --home-dir /data --create-home itsm
COPY --from=build /src/target/release/itsm /usr/local/bin/itsm
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
