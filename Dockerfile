# The surge binary for docker-compose.yml. librdkafka is built from source by the rdkafka crate.
FROM rust:1.88-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends cmake && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin surge

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* && useradd --system --uid 10001 surge
COPY --from=build /src/target/release/surge /usr/local/bin/surge
USER surge
ENTRYPOINT ["/usr/local/bin/surge"]
