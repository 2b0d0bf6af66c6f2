#!/bin/bash
# Usage: [NGINX_WORKERS=N] [NGINX_TLS_CERT=F NGINX_TLS_KEY=F] run_nginx.sh PORT ROOT [HOST]
# Renders nginx.conf.in into a fresh temp dir and execs nginx in the foreground
# (its pid is this script's pid: with one worker, the default, that one process
# serves; with N > 1 it is the master and the N workers are its children).  Prints
# "listening on http://HOST:PORT" (https:// with a certificate) once the port
# accepts connections.
# PORT 0 picks a free port.  SIGTERM/SIGINT stop nginx; the temp dir is
# removed once nginx has gone.
set -euo pipefail

if [[ $# -lt 2 ]]; then
    echo "usage: $0 PORT ROOT [HOST]" >&2
    exit 2
fi
port=$1
root=$(realpath -- "$2")
host=${3:-127.0.0.1}
here=$(dirname -- "$(realpath -- "${BASH_SOURCE[0]}")")

if [[ $port == 0 ]]; then  # nginx cannot listen on port 0: ask the kernel for one
    port=$(/usr/bin/python3 -c 'import socket,sys
s = socket.socket(); s.bind((sys.argv[1], 0)); print(s.getsockname()[1])' "$host")
fi

workers=${NGINX_WORKERS:-1}
if ! [[ $workers =~ ^[1-9][0-9]*$ ]]; then
    echo "$0: NGINX_WORKERS must be a positive number, not '$workers'" >&2
    exit 2
fi
if [[ $workers == 1 ]]; then master=off reuseport=""; else master=on reuseport=" reuseport"; fi

ssl="" ssl_conf="" scheme=http
if [[ -n ${NGINX_TLS_CERT:-} ]]; then
    # The same session settings as tendril's: no shared cache, tickets on.
    ssl=" ssl" scheme=https
    ssl_conf="ssl_certificate $(realpath -- "$NGINX_TLS_CERT"); ssl_certificate_key $(realpath -- "$NGINX_TLS_KEY"); ssl_protocols TLSv1.2 TLSv1.3; ssl_session_cache off;"
fi

prefix=$(mktemp -d /tmp/peer-nginx.XXXXXX)
sed -e "s|@SSL@|$ssl|g" -e "s|@SSL_CONF@|$ssl_conf|g" -e "s|@WORKERS@|$workers|g" -e "s|@MASTER@|$master|g" -e "s|@REUSEPORT@|$reuseport|g" \
    -e "s|@PORT@|$port|g" -e "s|@HOST@|$host|g" \
    -e "s|@ROOT@|$root|g" -e "s|@PREFIX@|$prefix|g" \
    "$here/nginx.conf.in" >"$prefix/nginx.conf"

nginx_pid=$$
(
    # Announce readiness, then wait for nginx to go and clean up after it.
    exec </dev/null
    for _ in $(seq 500); do
        if (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then
            echo "listening on $scheme://$host:$port"
            break
        fi
        kill -0 "$nginx_pid" 2>/dev/null || break
        sleep 0.02
    done
    while kill -0 "$nginx_pid" 2>/dev/null; do sleep 1; done
    rm -rf -- "$prefix"
) &

# -e stderr: nginx would otherwise open its built-in error log before reading the config.
exec nginx -e stderr -p "$prefix" -c "$prefix/nginx.conf"
