#!/usr/bin/env bash
# `make run`: start the server on a local default for trying it out:
# RocksDB in ./data, a development secret generated once in ./data, and a
# ready token for workspace-123 printed with the URL to use.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-build}/etherply
mkdir -p data
secret_file=data/dev-jwt-secret
if [ ! -s "$secret_file" ]; then
  (umask 077; head -c 48 /dev/urandom | base64 -w0 > "$secret_file")
  echo "run: generated a development JWT secret in $secret_file"
fi
token=$("$bin" token --jwt-secret-file "$secret_file" --sub dev --scope "read write admin" \
        --workspace workspace-123 --ttl 24h)
cat <<EOT

  EtherPly, development mode (data in ./data, secret in $secret_file)
  Token for workspace-123, valid 24h, scopes read write admin:

    $token

  WebSocket:  ws://127.0.0.1:8080/v1/sync/workspace-123?token=$token
  Watch it:   $bin watch "ws://127.0.0.1:8080/v1/sync/workspace-123?token=$token"
  Put a key:  $bin put "ws://127.0.0.1:8080/v1/sync/workspace-123?token=$token" foo '"bar"'
  Document:   curl -H "Authorization: Bearer $token" http://127.0.0.1:8080/v1/workspaces/workspace-123/doc

EOT
exec "$bin" serve --listen 127.0.0.1:8080 --data-dir data --jwt-secret-file "$secret_file"
