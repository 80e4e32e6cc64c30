#!/bin/sh
# Adds to an env file (deployment/docker/.env) every variable of the example it lacks: an env
# file made before a service joined the stack gets the new settings, each `change-me` replaced
# by a fresh random secret. Lines already there are left as they are.
#   sh env-missing.sh deployment/docker/.env.example deployment/docker/.env
set -eu
example="$1"
env_file="$2"
umask 077
grep -E '^[A-Z][A-Z0-9_]*=' "$example" | while IFS= read -r line; do
  name="${line%%=*}"
  grep -q "^${name}=" "$env_file" && continue
  case "$line" in
    *=change-me) line="${name}=$(openssl rand -hex 16)" ;;
  esac
  printf '%s\n' "$line" >> "$env_file"
  echo "added $name to $env_file"
done
