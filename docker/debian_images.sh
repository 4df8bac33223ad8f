#!/usr/bin/env bash
# Base images from Debian's packages, for a machine that reaches no container registry
# (docker-compose.debian.yaml uses them). Debian bookworm from the mirror apt uses here:
#   ioc-debian/base:bookworm       debootstrap --variant=minbase, imported with `docker import`
#   ioc-debian/python:3.11         + python3 (bookworm's 3.11) in a venv at /opt/python (python, pip on PATH)
#   ioc-debian/postgres:15         + postgresql (bookworm's 15), an entrypoint like the official image's
#   ioc-debian/redis:7             + redis-server (bookworm's 7.0)
# Each step is skipped when its image exists (FORCE=1 rebuilds). Needs root (debootstrap) and a
# running docker daemon.
#   docker/debian_images.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
SUITE="${DEBIAN_SUITE:-bookworm}"
FORCE="${FORCE:-0}"

# the mirror apt uses here (deb822 .sources or a one-line sources.list), or DEBIAN_MIRROR
mirror="${DEBIAN_MIRROR:-}"
if [ -z "$mirror" ]; then
  mirror="$(grep -hsE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v security | head -n1 || true)"
fi
if [ -z "$mirror" ]; then
  mirror="$(grep -hsE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | awk '{print $2}' | grep -v security | head -n1 || true)"
fi
[ -n "$mirror" ] || { echo "no Debian mirror in apt's sources: set DEBIAN_MIRROR" >&2; exit 1; }

have() { docker image inspect "$1" >/dev/null 2>&1; }

if [ "$FORCE" = 1 ] || ! have "ioc-debian/base:$SUITE"; then
  command -v debootstrap >/dev/null || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap; }
  rootfs="$(mktemp -d /var/tmp/ioc-rootfs.XXXXXX)"
  trap 'rm -rf "$rootfs"' EXIT
  echo "debootstrap $SUITE from $mirror"
  debootstrap --variant=minbase --include=ca-certificates "$SUITE" "$rootfs" "$mirror" >/dev/null
  # apt in the image uses the same mirror; no recommends, no docs, no apt caches (small images)
  printf 'deb %s %s main\ndeb %s %s-updates main\n' "$mirror" "$SUITE" "$mirror" "$SUITE" > "$rootfs/etc/apt/sources.list"
  printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' > "$rootfs/etc/apt/apt.conf.d/90ioc-norecommends"
  printf 'path-exclude /usr/share/doc/*\npath-exclude /usr/share/man/*\npath-exclude /usr/share/locale/*\n' > "$rootfs/etc/dpkg/dpkg.cfg.d/90ioc-nodoc"
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/*
  tar -C "$rootfs" -c . | docker import \
    -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8' \
    -c 'CMD ["bash"]' - "ioc-debian/base:$SUITE"
  rm -rf "$rootfs"; trap - EXIT
fi

# the package installs inside these builds reach the mirror through the host's network
for img in python:3.11 postgres:15 redis:7; do
  name="${img%%:*}"
  if [ "$FORCE" = 1 ] || ! have "ioc-debian/$img"; then
    echo "building ioc-debian/$img"
    docker build --network host -q --build-arg "BASE=ioc-debian/base:$SUITE" \
      -t "ioc-debian/$img" -f "$here/debian/$name.Dockerfile" "$here/debian"
  fi
done
docker images --format '{{.Repository}}:{{.Tag}}  {{.Size}}' | grep '^ioc-debian/'
