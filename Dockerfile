# SPDX-License-Identifier: MIT
# Multi-stage build of paymentd on Debian 12: the same packages and the same
# `make` as the local stack (scripts/install-deps), so what CI tests is what
# the image runs.
FROM debian:12 AS build
WORKDIR /src
COPY scripts/install-deps scripts/install-deps
RUN apt-get update && scripts/install-deps && rm -rf /var/lib/apt/lists/*
COPY . .
RUN make -j"$(nproc)" PREFIX=/opt/paymentd all && make install PREFIX=/opt/paymentd

FROM debian:12-slim
RUN apt-get update && apt-get install -y --no-install-recommends \
        libgrpc29 libprotobuf-c1 libpq5 libhiredis0.14 libjansson4 libseccomp2 \
        libsqlite3-0 librdkafka1 libsystemd0 libssl3 ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin paymentd \
    && install -d -m 0555 /var/lib/paymentd/empty \
    && install -d -o paymentd -g paymentd /var/lib/payment-relay
COPY --from=build /opt/paymentd /opt/paymentd
ENV PATH=/opt/paymentd/bin:$PATH \
    MIGRATIONS_DIR=/opt/paymentd/share/paymentd/migrations \
    GRPC_HOST=0.0.0.0 GRPC_PORT=50051
EXPOSE 50051 9090 9091
# The supervisor starts as root only to drop each worker into the sandbox;
# workers and the relay run as the paymentd user.
ENTRYPOINT ["paymentd"]
CMD ["serve"]
