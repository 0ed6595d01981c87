# Builds the kaizen binary into a small image (used by docker-compose.yml).
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin kaizen

FROM debian:bookworm-slim
COPY --from=build /src/target/release/kaizen /usr/local/bin/kaizen
ENTRYPOINT ["kaizen"]
