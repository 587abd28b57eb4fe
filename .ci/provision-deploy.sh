#!/usr/bin/env bash
# What the deployment tests need beside the Docker engine: Debian's docker-compose, curl,
# and debootstrap for the image's base (make image).
set -euo pipefail
missing=()
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
echo "deploy tools ready: $(docker-compose version --short), debootstrap $(dpkg-query -W -f '${Version}' debootstrap)"
