#!/usr/bin/env bash
# Makes the base image (Debian + its Python 3.11) from Debian's packages with
# debootstrap, so `make image` needs no image registry. The mirror is the one
# this machine's apt is configured with. A user with a registry skips this:
#   make image BASE=python:3.11-slim
set -euo pipefail
tag=${1:?usage: base.sh TAG}
suite=${SUITE:-bookworm}

if docker image inspect "$tag" >/dev/null 2>&1; then
  echo "base image $tag already present"
  exit 0
fi
if ! command -v debootstrap >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi

# The first Debian mirror apt knows, from deb822 .sources files or sources.list.
mirror=$(
  { grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}'
    grep -hs '^deb ' /etc/apt/sources.list | awk '{print $2}'; } 2>/dev/null \
  | grep -v -- '-security' | head -n1 || true
)
[ -n "$mirror" ] || { echo "base.sh: no Debian mirror found in /etc/apt" >&2; exit 1; }

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
echo "debootstrap $suite from the machine's apt mirror into $root"
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
  "$suite" "$root" "$mirror" >"$root.log" 2>&1 || { tail -20 "$root.log" >&2; exit 1; }
rm -f "$root.log"
# What a container never reads: package caches and lists, docs, manuals, translations.
# glibc's iconv modules (Python's codecs are its own), the system time zones (the tzdata
# wheel serves zoneinfo) and pydoc's topics go too.
rm -rf "$root"/var/cache/apt/* "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* \
  "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/* \
  "$root"/var/log/* "$root"/usr/lib/python3.11/test "$root"/usr/lib/python3.11/pydoc_data \
  "$root"/usr/share/zoneinfo "$root"/usr/lib/x86_64-linux-gnu/gconv
tar --numeric-owner -C "$root" -c . \
  | docker import -c 'ENV LANG=C.UTF-8' -c 'CMD ["/bin/bash"]' - "$tag" >/dev/null
echo "base image $tag: $(docker image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}')"
