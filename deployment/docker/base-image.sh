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
# The recipe's version: a tarball or an image made by an older recipe (a cache kept from an
# earlier run) is made again rather than reused.
recipe=2

present="$("$docker" image inspect --format '{{ index .Config.Labels "org.finance-assets.base-recipe" }}' "$tag" 2>/dev/null || true)"
if [ "$present" = "$recipe" ]; then
  echo "$tag: already present"
  exit 0
fi
mkdir -p "$cache"
tarball="$cache/bookworm-python-r$recipe.tar"
if [ ! -s "$tarball" ]; then
  root="$(mktemp -d "$cache/rootfs.XXXXXX")"
  trap 'rm -rf "$root"' EXIT
  # python3-venv: the Dockerfiles build a virtualenv; ca-certificates: pip and apt over HTTPS.
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    bookworm "$root" "$mirror" >"$cache/debootstrap.log" 2>&1 \
    || { tail -20 "$cache/debootstrap.log" >&2; exit 1; }
  # No documentation, manual page or translation: no one reads them in a container. dpkg leaves
  # them out of every package installed later (db.Dockerfile's PostgreSQL) and the ones
  # debootstrap unpacked are removed here; the licences (copyright files) stay.
  cat >"$root/etc/dpkg/dpkg.cfg.d/01-finance-assets-slim" <<'CFG'
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/lintian/*
path-exclude=/usr/share/locale/*
path-include=/usr/share/locale/locale.alias
CFG
  find "$root/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
  find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
  rm -rf "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/lintian
  find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
  # The image gets its DNS from the engine; apt's lists and the packages debootstrap downloaded
  # are fetched again by any build that installs packages, so they are not kept.
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/etc/resolv.conf
  find "$root/var/cache/apt/archives" -name '*.deb' -delete
  tar -C "$root" --numeric-owner -cf "$tarball.tmp" .
  mv "$tarball.tmp" "$tarball"
fi
"$docker" import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change "LABEL org.finance-assets.base-recipe=$recipe" \
  --change 'CMD ["python3"]' \
  "$tarball" "$tag" >/dev/null
echo "$tag: imported from $tarball"
