# syntax=docker/dockerfile:1
#
# Image with both binaries of cratedb-restore:
#   /usr/local/bin/cratedb-restore-webhook  (the admission webhook; the default entrypoint)
#   /usr/local/bin/cratedb-restore-job      (the restore Job; the chart's Job template runs it)
#
#   docker build -t cratedb-restore:0.1.0 .

ARG RUST_VERSION=1.95
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot

# ---- skeleton: what decides the dependency build ----------------------------------------------
# Manifests and Cargo.lock as they are, every .rs file replaced by the same stub, everything else
# dropped. Its content changes only when dependencies or the crate/target layout change, so the
# dependency layer below stays cached across source edits. (Explicit [[bench]]/[[test]] targets
# keep their paths, so Cargo can load every manifest of the workspace.)
FROM rust:${RUST_VERSION}-bookworm AS skeleton
WORKDIR /src
COPY . .
RUN find . -name '*.rs' -exec sh -c 'for f; do echo "fn main() { }" > "$f"; done' sh {} + \
 && find . -type f ! -name '*.rs' ! -name Cargo.toml ! -name Cargo.lock \
      ! -name 'rust-toolchain*' ! -path './.cargo/*' -delete \
 && find . -type d -empty -delete

# ---- build ----------------------------------------------------------------------------------
FROM rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
# 1. Dependencies only (against the stubs): cached until the skeleton changes.
COPY --from=skeleton /src ./
RUN cargo build --release --locked --bin cratedb-restore-webhook --bin cratedb-restore-job
# 2. The real sources. COPY may keep modification times older than the stub build: touch every
#    source file so that cargo rebuilds the project's own crates.
COPY . .
RUN find . -path ./target -prune -o -name '*.rs' -exec touch {} + \
 && cargo build --release --locked --bin cratedb-restore-webhook --bin cratedb-restore-job \
 && install -D -m 0755 target/release/cratedb-restore-webhook /out/cratedb-restore-webhook \
 && install -D -m 0755 target/release/cratedb-restore-job /out/cratedb-restore-job

# ---- runtime --------------------------------------------------------------------------------
# distroless cc: glibc and libgcc only, no shell, no package manager; user 65532 ("nonroot").
FROM ${RUNTIME_IMAGE}
LABEL org.opencontainers.image.title="cratedb-restore" \
      org.opencontainers.image.description="Admission webhook and restore Job for CrateDB snapshot restores on Kubernetes" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/cratedb-restore-webhook /out/cratedb-restore-job /usr/local/bin/
USER 65532:65532
EXPOSE 8443 8080
ENTRYPOINT ["/usr/local/bin/cratedb-restore-webhook"]
