# syntax=docker/dockerfile:1
#
# Latchkey container image.
#
#   docker build -t latchkey .
#   docker run --rm -p 8080:8080 -v latchkey-data:/var/lib/latchkey latchkey
#
# The image ships config/latchkey.toml as /etc/latchkey/latchkey.toml. That file contains
# DEMO clients and a DEMO user with published secrets. For anything beyond a local trial,
# mount your own config over /etc/latchkey, and set LATCHKEY_ISSUER to the public https URL
# and LATCHKEY_MASTER_KEY (`openssl rand -base64 32`).

# ---- build -------------------------------------------------------------------------------
FROM rust:1-bookworm AS builder
WORKDIR /src

# Only what the build needs: src/store/mod.rs embeds migrations/ in the binary, and askama
# compiles templates/ into it. static/ holds the page assets.
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY migrations ./migrations
COPY templates ./templates
COPY static ./static

# --locked: build exactly the dependency versions in Cargo.lock.
# The cache mounts keep the crate registry and target/ between builds (BuildKit). target/
# is a cache mount, so the binary is copied out in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
    && install -m 0755 target/release/latchkey /usr/local/bin/latchkey

# ---- runtime -----------------------------------------------------------------------------
FROM debian:bookworm-slim

RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*

# Unprivileged user with a fixed uid/gid, so volume ownership is predictable.
RUN groupadd --system --gid 10001 latchkey \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/latchkey \
       --no-create-home --shell /usr/sbin/nologin latchkey \
    && install -d -o root -g root -m 0755 /etc/latchkey \
    && install -d -o latchkey -g latchkey -m 0700 /var/lib/latchkey

COPY --from=builder /usr/local/bin/latchkey /usr/local/bin/latchkey
COPY --chown=root:root --chmod=0644 config/latchkey.toml /etc/latchkey/latchkey.toml

# Config overrides (see the comments in latchkey.toml). Listen on all interfaces inside the
# container. Keep SQLite and the generated master.key in the data volume. LATCHKEY_CONFIG
# makes every command (`docker exec ... latchkey user add`) read the image's config, not
# config/latchkey.toml under the working directory.
ENV LATCHKEY_CONFIG=/etc/latchkey/latchkey.toml \
    LATCHKEY_BIND=0.0.0.0:8080 \
    LATCHKEY_DATA_DIR=/var/lib/latchkey \
    LATCHKEY_DATABASE_URL=sqlite:///var/lib/latchkey/latchkey.db

WORKDIR /var/lib/latchkey
VOLUME ["/etc/latchkey", "/var/lib/latchkey"]

# Numeric uid:gid lets Kubernetes' runAsNonRoot check that the user is not root.
USER 10001:10001

EXPOSE 8080

# No HEALTHCHECK: a Docker HEALTHCHECK runs a command inside the container, and this slim
# image has no curl or wget (adding them would enlarge the image and its attack surface).
# Probe the HTTP endpoints from outside instead, e.g. with a Kubernetes httpGet probe.

ENTRYPOINT ["latchkey"]
CMD ["serve", "--config", "/etc/latchkey/latchkey.toml"]
