# PostgreSQL for the compose stack's `ha` profile (two managers on one database), from
# Debian's package on Corral's own base, so no image registry is needed:
#   make image-postgres
# With a registry, the official postgres image serves as well.
ARG BASE=corral-base:bookworm
FROM ${BASE}
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql-15 \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /usr/share/doc/* /usr/share/man/*
COPY postgres-entrypoint.sh /usr/local/bin/corral-postgres
# The data directory exists in the image, owned by postgres, so a new volume mounted there
# takes that owner (docker would otherwise make the mount point root's).
RUN install -d -o postgres -g postgres -m 700 /var/lib/postgresql/data
USER postgres
ENV PATH=/usr/lib/postgresql/15/bin:$PATH PGDATA=/var/lib/postgresql/data
ENTRYPOINT ["corral-postgres"]
