#!/usr/bin/env bash
# sandboxd's two commands, for a fresh Debian 12 machine, as root:
#
#   ./dev.sh up     install what is missing, build, and run nginx + sandboxd in
#                   the foreground: https://127.0.0.1:8443 and http://127.0.0.1:8080.
#                   Ctrl-C or SIGTERM stops everything it started.
#   ./dev.sh test   install what is missing, build, and run every test; the last
#                   line says "N passed, N failed".
#
# Also: ./dev.sh deps | build.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
build="$here/build"
dev="$here/.dev"

# Debian packages the build, the service and the tests need.
packages=(
	build-essential autoconf automake pkg-config
	libfcgi-dev libjansson-dev libseccomp-dev libpcre2-dev libcmocka-dev libcurl4-openssl-dev
	nginx openssl ca-certificates curl e2fsprogs bash-static
	python3 python-is-python3 python3-numpy python3-pandas python3-matplotlib
	nodejs npm bubblewrap clang libclang-rt-14-dev
)

need_root() {
	if [ "$(id -u)" -ne 0 ]; then
		echo "dev.sh: run as root (sandboxd's master creates namespaces and cgroups)" >&2
		exit 1
	fi
}

deps() {
	local missing=()
	for p in "${packages[@]}"; do
		# node and npm may come from elsewhere than Debian (NodeSource's nodejs
		# bundles npm): a binary on PATH is enough.
		if [ "$p" = nodejs ] && command -v node >/dev/null 2>&1; then
			continue
		fi
		if [ "$p" = npm ] && command -v npm >/dev/null 2>&1; then
			continue
		fi
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
	done
	if [ ${#missing[@]} -gt 0 ]; then
		echo "dev.sh: installing ${missing[*]}"
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	fi
	# The official client, for the compatibility tests (from the npm registry).
	if [ ! -d "$here/tests/client/node_modules/@cloudflare/sandbox" ]; then
		(cd "$here/tests/client" && npm ci --no-audit --no-fund >/dev/null)
	fi
	# The unprivileged user of the FastCGI workers.
	id sandboxd >/dev/null 2>&1 ||
		useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin sandboxd
}

build() {
	if [ ! -x "$here/configure" ] || [ "$here/configure.ac" -nt "$here/configure" ]; then
		(cd "$here" && ./autogen.sh >/dev/null)
	fi
	mkdir -p "$build"
	if [ ! -f "$build/Makefile" ]; then
		(cd "$build" && "$here/configure" --enable-werror >/dev/null)
	fi
	make -C "$build" -j"$(nproc)" --no-print-directory all
	make -C "$build" -j"$(nproc)" --no-print-directory check TESTS= >/dev/null
}

up() {
	need_root
	deps
	build
	mkdir -p "$dev/run" "$dev/log" "$dev/state" "$dev/tls"
	chmod 755 "$dev" "$dev/run"
	chmod 711 "$dev/state"
	if [ ! -f "$dev/tls/cert.pem" ]; then
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 \
			-subj /CN=localhost -addext "subjectAltName=DNS:localhost,DNS:*.localhost,IP:127.0.0.1" \
			-keyout "$dev/tls/key.pem" -out "$dev/tls/cert.pem" 2>/dev/null
	fi
	"$here/conf/nginx/render.sh" "$dev/nginx.conf" NGINX_USER=www-data \
		RUN_DIR="$dev/run" LOG_DIR="$dev/log" \
		HTTPS_LISTEN=127.0.0.1:8443 HTTP_LISTEN=127.0.0.1:8080 \
		TLS_CERT="$dev/tls/cert.pem" TLS_KEY="$dev/tls/key.pem" FCGI_SOCKET="$dev/run/fcgi.sock"

	local sandboxd_pid="" nginx_pid=""
	stop() {
		trap - INT TERM EXIT
		[ -n "$nginx_pid" ] && kill -QUIT "$nginx_pid" 2>/dev/null || true
		[ -n "$sandboxd_pid" ] && kill -TERM "$sandboxd_pid" 2>/dev/null || true
		wait 2>/dev/null || true
		echo "dev.sh: stopped"
	}
	trap stop INT TERM EXIT

	SANDBOXD_SOCKET="$dev/run/fcgi.sock" SANDBOXD_STATE_DIR="$dev/state" \
		SANDBOXD_AGENT="$build/sandbox-core/agent/sandbox-agent" \
		SANDBOXD_DRIVERS_DIR="$here/drivers" \
		SANDBOXD_SOCKET_GROUP=www-data \
		"$build/fcgi-app/sandboxd" -c "${SANDBOXD_CONF:-/dev/null}" &
	sandboxd_pid=$!
	# Wait for the socket, not for a guess of time.
	while [ ! -S "$dev/run/fcgi.sock" ]; do
		kill -0 "$sandboxd_pid" 2>/dev/null || { echo "dev.sh: sandboxd failed to start" >&2; exit 1; }
		sleep 0.05
	done
	nginx -p "$dev" -c "$dev/nginx.conf" -g "daemon off;" &
	nginx_pid=$!

	cat <<MSG

sandboxd is up (Ctrl-C stops it):
  https://127.0.0.1:8443   (self-signed certificate: $dev/tls/cert.pem)
  http://127.0.0.1:8080

  curl --cacert $dev/tls/cert.pem https://localhost:8443/v1/run \\
       -H 'Content-Type: application/json' \\
       -d '{"code": "print(6 * 7)", "language": "python"}'

  curl --cacert $dev/tls/cert.pem https://localhost:8443/v1/sandboxes/demo/run-code \\
       -H 'Content-Type: application/json' \\
       -d '{"code": "import math\\nmath.pi * 2 ** 2"}'

No API keys are configured, so only loopback clients are served.
Logs: $dev/log/
MSG
	wait -n "$sandboxd_pid" "$nginx_pid" || true
}

run_tests() {
	need_root
	deps
	build
	/usr/bin/python3 "$here/tests/run.py" --build-dir "$build" "$@"
}

case "${1:-}" in
up) up ;;
test) shift; run_tests "$@" ;;
deps) need_root; deps ;;
build) build ;;
*)
	echo "usage: $0 up | test [--only REGEX] | deps | build" >&2
	exit 2
	;;
esac
