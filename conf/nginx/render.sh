#!/bin/sh
# Renders sandboxd.conf.in into an nginx.conf: each NAME=value argument
# replaces @NAME@.  Every placeholder must be given; the rendered file is
# checked for leftovers.
#   conf/nginx/render.sh OUT NGINX_USER=www-data RUN_DIR=... LOG_DIR=... \
#       HTTPS_LISTEN=127.0.0.1:8443 HTTP_LISTEN=127.0.0.1:8080 \
#       TLS_CERT=... TLS_KEY=... FCGI_SOCKET=...
set -eu
here=$(dirname "$0")
out=$1
shift
cp "$here/sandboxd.conf.in" "$out.tmp"
for kv in "$@"; do
	name=${kv%%=*}
	value=${kv#*=}
	# '|' cannot occur in the paths and addresses we substitute.
	case $value in
	*'|'* | *'
'*)
		echo "render.sh: $name contains '|' or a newline" >&2
		rm -f "$out.tmp"
		exit 1
		;;
	esac
	# In a sed replacement, & and \ are special: escape them.
	value=$(printf '%s' "$value" | sed -e 's/[\\&]/\\&/g')
	sed -i "s|@$name@|$value|g" "$out.tmp"
done
if grep -n '@[A-Z_]*@' "$out.tmp" >&2; then
	echo "render.sh: placeholders left unset (above)" >&2
	rm -f "$out.tmp"
	exit 1
fi
mv "$out.tmp" "$out"
