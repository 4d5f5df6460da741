#!/bin/sh
# Installs the Debian packages the build, the tests and `make run` need,
# and those named as arguments (a target's own: valgrind, wrk...), only
# those that are missing; apt-get update runs only when one is.
set -e

packages="gcc libc6-dev make perl procps curl nginx nginx-dev libhiredis-dev
libjansson-dev redis-server libcmocka-dev $*"

missing=
for p in $packages; do
    if ! dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'ok installed'
    then
        missing="$missing $p"
    fi
done

[ -z "$missing" ] && exit 0

echo "deps: installing$missing"
sudo=
[ "$(id -u)" -eq 0 ] || sudo=sudo
$sudo apt-get update -qq
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    --no-install-recommends $missing
