#!/bin/sh
# Builds the libFuzzer targets with clang (AddressSanitizer and
# UndefinedBehaviorSanitizer) into OUT_DIR.
#   tests/fuzz/build.sh OUT_DIR
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
out=$1
mkdir -p "$out"
flags="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -std=gnu11 -D_GNU_SOURCE -I$top/fcgi-app -I$top/sandbox-core/include $(pkg-config --cflags jansson)"
libs=$(pkg-config --libs jansson)
app="$top/fcgi-app"
clang $flags -o "$out/fuzz_request" "$top/tests/fuzz/fuzz_request.c" \
	"$app/request.c" "$app/api.c" "$app/lang.c" "$app/conf.c" $libs
clang $flags -o "$out/fuzz_conf" "$top/tests/fuzz/fuzz_conf.c" "$app/conf.c"
