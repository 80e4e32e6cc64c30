#!/usr/bin/env bash
# Builds the base image locally, for machines that reach Debian's archive but no image registry:
# a minimal Debian bookworm (debootstrap) with Python 3.11, imported as a Docker image. The
# Dockerfiles then take it as BASE_IMAGE instead of python:3.11-slim-bookworm.
#   deployment/docker/base-image.sh [IMAGE_TAG] [CACHE_DIR]
# The root filesystem's tarball is kept in CACHE_DIR (default .cache/docker), so a second call
# only re-imports it. Needs root, debootstrap and a running Docker engine (DOCKER_HOST honoured).
set -euo pipefail
tag="${1:-finance-assets/base:bookworm}"
cache="${2:-$(cd "$(dirname "$0")/../.." && pwd)/.cache/docker}"
docker="${DOCKER:-docker}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

if "$docker" image inspect "$tag" >/dev/null 2>&1; then
  echo "$tag: already present"
  exit 0
fi
mkdir -p "$cache"
tarball="$cache/bookworm-python.tar"
if [ ! -s "$tarball" ]; then
  root="$(mktemp -d "$cache/rootfs.XXXXXX")"
  trap 'rm -rf "$root"' EXIT
  # python3-venv: the Dockerfiles build a virtualenv; ca-certificates: pip and apt over HTTPS.
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    bookworm "$root" "$mirror" >"$cache/debootstrap.log" 2>&1 \
    || { tail -20 "$cache/debootstrap.log" >&2; exit 1; }
  # The image gets its DNS from the engine; apt's lists are fetched again by any build that
  # installs packages, so they are not kept.
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/etc/resolv.conf
  tar -C "$root" --numeric-owner -cf "$tarball.tmp" .
  mv "$tarball.tmp" "$tarball"
fi
"$docker" import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["python3"]' \
  "$tarball" "$tag" >/dev/null
echo "$tag: imported from $tarball"
