# syntax=docker/dockerfile:1
# Multi-stage build of the telemetry service.
#   builder: pinned Rust toolchain; dependencies compiled in their own layer (rebuilt only
#            when Cargo.toml / Cargo.lock change), then the sources; always --locked.
#   runtime: distroless cc (glibc + libgcc, no shell, no package manager), non-root.

FROM rust:1.95-slim-bookworm AS builder
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /build

# 1. Dependencies only: stub targets (src/main.rs, src/lib.rs and one per [[bench]] entry,
#    which Cargo requires to exist) so `cargo build` compiles every dependency in a layer
#    that is rebuilt only when Cargo.toml or Cargo.lock change.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src benches \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && awk -F'"' '/^\[\[bench\]\]/ { b = 1; next } /^\[/ { b = 0 } b && /^name *=/ { print "benches/" $2 ".rs" }' Cargo.toml \
       | while read -r stub; do echo 'fn main() {}' > "$stub"; done \
    && cargo build --release --locked \
    && rm -rf src benches target/release/.fingerprint/telemetry-* \
       target/release/deps/telemetry-* target/release/deps/libtelemetry-*

# 2. The service itself (.dockerignore limits the context to Cargo.*, src/, benches/, build.rs).
COPY . .
RUN cargo build --release --locked \
    && install -D -m 0755 target/release/telemetry /out/usr/local/bin/telemetry \
    && install -d -m 0750 /out/data

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=builder /out/usr/local/bin/telemetry /usr/local/bin/telemetry
# Writable data directory for the default embedded store (ECS uses DynamoDB and a
# read-only root filesystem, where nothing is written).
COPY --from=builder --chown=65532:65532 /out/data /data

ENV PORT=8080 \
    BIND_ADDR=0.0.0.0 \
    DATA_DIR=/data \
    LOG_FORMAT=json \
    RUST_LOG=info

USER 65532:65532
EXPOSE 8080

# No shell in the image: the binary checks itself (GET http://127.0.0.1:$PORT/api, exit 0/1).
HEALTHCHECK --interval=15s --timeout=5s --start-period=15s --retries=3 \
    CMD ["/usr/local/bin/telemetry", "healthcheck"]

ENTRYPOINT ["/usr/local/bin/telemetry"]
