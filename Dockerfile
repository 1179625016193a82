# podgate's container image: built with the Rust toolchain, shipped on a distroless base that
# holds only glibc, CA certificates and a non-root user (no shell, no package manager).
#
#   docker build -t podgate:0.1.0 .
#
# The builder's Rust must be at least Cargo.toml's rust-version (a test checks).

FROM rust:1.95-bookworm AS build
WORKDIR /src
# Manifests first: the dependency download is cached until Cargo.lock changes.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src benches \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && echo 'fn main() {}' > benches/parser.rs \
    && cargo fetch --locked
COPY src src
COPY benches benches
RUN cargo build --release --locked --bin podgate \
    && cp target/release/podgate /podgate

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /podgate /usr/local/bin/podgate
# distroless's nonroot user; deploy/ sets the same uid in runAsUser.
USER 65532:65532
EXPOSE 9464
ENTRYPOINT ["/usr/local/bin/podgate"]
CMD ["run"]
