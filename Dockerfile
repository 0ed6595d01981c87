# Builds the kaizen binary into a small image (used by docker-compose.yml).
FROM rust:1.95-bookworm AS build
# librdkafka is compiled from source with TLS (system OpenSSL) and SASL (Cyrus libsasl2).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libssl-dev libsasl2-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin kaizen

FROM debian:bookworm-slim
# What the binary links (libssl3, libsasl2-2; zlib is in the base image) and the CA bundle
# for TLS to Kafka and Slack.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libssl3 libsasl2-2 ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/kaizen /usr/local/bin/kaizen
ENTRYPOINT ["kaizen"]
