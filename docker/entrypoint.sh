#!/bin/sh
# Starts sandboxd and nginx in the container and stops both when either ends
# or when the container is asked to stop.  Settings come from SANDBOXD_*
# variables (docs/CONFIGURATION.md) and an optional /etc/sandboxd/sandboxd.conf.
set -eu

run=/run/sandboxd
tls=/etc/sandboxd/tls
mkdir -p "$run" /var/log/sandboxd /var/lib/sandboxd "$tls"
chmod 755 "$run"
chmod 711 /var/lib/sandboxd

if [ ! -f "$tls/cert.pem" ]; then
	# A self-signed certificate for a first start; mount your own at $tls.
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 \
		-subj "/CN=${SANDBOXD_TLS_NAME:-localhost}" \
		-addext "subjectAltName=DNS:${SANDBOXD_TLS_NAME:-localhost},IP:127.0.0.1" \
		-keyout "$tls/key.pem" -out "$tls/cert.pem" 2>/dev/null
fi

/usr/share/sandboxd/nginx/render.sh "$run/nginx.conf" NGINX_USER=www-data \
	RUN_DIR="$run" LOG_DIR=/var/log/sandboxd \
	HTTPS_LISTEN="${SANDBOXD_HTTPS_LISTEN:-0.0.0.0:8443}" \
	HTTP_LISTEN="${SANDBOXD_HTTP_LISTEN:-127.0.0.1:8080}" \
	TLS_CERT="$tls/cert.pem" TLS_KEY="$tls/key.pem" FCGI_SOCKET="$run/fcgi.sock"

export SANDBOXD_SOCKET="$run/fcgi.sock" SANDBOXD_SOCKET_GROUP=www-data
if [ -z "${SANDBOXD_API_KEYS:-}" ]; then
	echo "entrypoint: SANDBOXD_API_KEYS is not set: only loopback clients (inside the container) are served" >&2
fi

/usr/sbin/sandboxd &
sandboxd=$!
# nginx starts once sandboxd's socket exists.
while [ ! -S "$run/fcgi.sock" ]; do
	kill -0 "$sandboxd" 2>/dev/null || { wait "$sandboxd"; exit 1; }
	sleep 0.05
done
nginx -p "$run" -c "$run/nginx.conf" -g "daemon off;" &
nginx=$!

stop() {
	kill -QUIT "$nginx" 2>/dev/null || true
	kill -TERM "$sandboxd" 2>/dev/null || true
}
trap stop INT TERM
# Whichever ends first ends the container.
while kill -0 "$sandboxd" 2>/dev/null && kill -0 "$nginx" 2>/dev/null; do
	wait || true
done
stop
wait || true
