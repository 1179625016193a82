# podgate's container image: a static podgate binary (glibc with crt-static; rustls, no
# OpenSSL) on an empty base, with only the CA certificates and the non-root user 65532.
#
#   docker build -t podgate:0.1.0 .
#
# scripts/image builds the same image without docker or a base image from a registry
# (buildah, from scratch); tests/image.rs checks that both use the same cargo flags, files,
# user and entrypoint. The builder's Rust must be at least Cargo.toml's rust-version (a test
# checks).

FROM rust:1.95-bookworm AS build
WORKDIR /src
# Manifests first: the dependency download is cached until Cargo.lock changes.
COPY Cargo.toml Cargo.lock ./
COPY crates/podgate-core/Cargo.toml crates/podgate-core/
RUN mkdir -p src benches crates/podgate-core/src \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs crates/podgate-core/src/lib.rs \
    && echo 'fn main() {}' > benches/parser.rs \
    && cargo fetch --locked
COPY src src
COPY crates crates
COPY benches benches
# With an explicit --target, RUSTFLAGS apply to podgate only, not to build scripts and proc
# macros.
ENV RUSTFLAGS="-C target-feature=+crt-static"
RUN cargo build --release --locked --bin podgate --target x86_64-unknown-linux-gnu \
    && cp target/x86_64-unknown-linux-gnu/release/podgate /podgate \
    && printf 'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' > /passwd \
    && printf 'nonroot:x:65532:\n' > /group

FROM scratch
COPY --from=build /podgate /usr/local/bin/podgate
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /passwd /etc/passwd
COPY --from=build /group /etc/group
# deploy/ sets the same uid and gid in runAsUser and runAsGroup.
USER 65532:65532
EXPOSE 9464
ENTRYPOINT ["/usr/local/bin/podgate"]
CMD ["run"]
