#!/usr/bin/env bash
# Gives the tests a real Docker engine and the local test image.
# The engine runs with no bridge and no iptables changes: test containers use
# host networking on 127.0.0.1, so no traffic leaves loopback.
set -euo pipefail

if ! docker info >/dev/null 2>&1; then
  if ! command -v dockerd >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
  fi
  mkdir -p /tmp/corral-ci
  nohup dockerd --bridge=none --iptables=false >/tmp/corral-ci/dockerd.log 2>&1 &
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { cat /tmp/corral-ci/dockerd.log; exit 1; }
fi

if ! docker image inspect corral-test/busybox:latest >/dev/null 2>&1; then
  # The image has no libc: only a static busybox (with httpd) runs in it; ldd succeeds on dynamic ones.
  if ! [ -x /bin/busybox ] || ! /bin/busybox --list | grep -qx httpd || ldd /bin/busybox >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >/dev/null
  fi
  root=$(mktemp -d)
  mkdir -p "$root/bin" "$root/tmp" "$root/www" "$root/etc"
  cp /bin/busybox "$root/bin/busybox"
  for applet in $(/bin/busybox --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
  done
  echo "root:x:0:0:root:/root:/bin/sh" > "$root/etc/passwd"
  tar -C "$root" -c . | docker import -c 'ENV PATH=/bin' -c 'CMD ["/bin/sh"]' - corral-test/busybox:latest >/dev/null
  rm -rf "$root"
fi
echo "docker engine ready: $(docker version --format '{{.Server.Version}}'), image corral-test/busybox:latest"
