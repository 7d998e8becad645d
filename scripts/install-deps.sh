#!/usr/bin/env bash
# Installs what building and running "likes" needs on Debian 12:
#
#   scripts/install-deps.sh
#
# Debian packages come from apt-get, only those missing (apt-get update runs
# only then). The Kafka 3.9.1 broker and tool jars come from Maven into
# .deps/kafka/libs, once per version of stack/kafka/pom.xml. Takes about a
# second when everything is already there.
set -euo pipefail

LIKES_LOG_TAG=install-deps
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$root/scripts/common.sh"

packages=(
    build-essential pkg-config
    librdkafka-dev libmicrohttpd-dev libvips-dev libjson-c-dev libhiredis-dev
    libssl-dev libpq-dev
    redis-server postgresql-15 postgresql-client-15
    openjdk-17-jre-headless maven
    clang-format curl python3 python3-venv jq
    chromium
)

# dpkg -s also succeeds for a removed package whose config files remain, so
# look at its status line.
is_installed() {
    dpkg -s "$1" 2>/dev/null | grep -q '^Status: install ok installed$'
}

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null; then
        sudo "$@"
    else
        die "need root to run: $*"
    fi
}

install_packages() {
    local missing=() pkg
    for pkg in "${packages[@]}"; do
        is_installed "$pkg" || missing+=("$pkg")
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        log "Debian packages: all ${#packages[@]} present"
        return
    fi

    log "Debian packages: installing ${missing[*]}"

    # Installing redis-server or postgresql-15 would start system-wide
    # instances on the default ports; the stack runs its own, so keep the
    # package scripts from starting any while installing.
    local policy=/usr/sbin/policy-rc.d added_policy=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
        as_root chmod 755 "$policy"
        added_policy=1
    fi

    local status=0
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q || status=$?
    if [ "$status" -eq 0 ]; then
        as_root env DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -q --no-install-recommends "${missing[@]}" || status=$?
    fi
    if [ "$added_policy" -eq 1 ]; then
        as_root rm -f "$policy"
    fi
    [ "$status" -eq 0 ] || die "apt-get failed with status $status"
}

# The marker holds the checksum of the pom the jars came from, so editing the
# pom (say, a new Kafka version) fetches again.
fetch_kafka_jars() {
    local pom="$root/stack/kafka/pom.xml"
    local dest="$root/.deps/kafka"
    local marker="$dest/fetched" want
    want="$(sha256sum "$pom" | cut -d' ' -f1)"
    if [ -d "$dest/libs" ] && [ "$(cat "$marker" 2>/dev/null)" = "$want" ]; then
        log "Kafka jars: present in $dest/libs"
        return
    fi

    log "Kafka jars: fetching with Maven into $dest/libs"
    mkdir -p "$dest"
    rm -rf "$dest/libs.tmp"
    # Maven's quiet mode still writes terminal escape codes: keep its output
    # in a file and show it only when something went wrong.
    if ! mvn -B -q -f "$pom" dependency:copy-dependencies \
        -DoutputDirectory="$dest/libs.tmp" -DincludeScope=runtime >"$dest/mvn.log" 2>&1; then
        tail -n 40 "$dest/mvn.log" >&2
        die "Maven could not fetch the Kafka jars (full output in $dest/mvn.log)"
    fi
    ls "$dest/libs.tmp"/kafka_2.13-*.jar >/dev/null 2>&1 \
        || die "Maven finished but $dest/libs.tmp holds no kafka_2.13 jar"

    rm -rf "$dest/libs"
    mv "$dest/libs.tmp" "$dest/libs"
    printf '%s\n' "$want" >"$marker"
    local jars=("$dest/libs"/*.jar)
    log "Kafka jars: ${#jars[@]} jars in $dest/libs"
}

install_packages
fetch_kafka_jars
