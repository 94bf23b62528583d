#!/bin/sh
# Installs the Debian packages the demo lab and the whole test suite need (the list, with why each
# is needed, is tools/test-deps.mjs). README's set-up and .ci/run both call this, so the two
# cannot drift apart. Run as root on Debian/Ubuntu, with Node.js on PATH.
set -eu
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
apt-get update
# shellcheck disable=SC2046 # word splitting is the point: one argument per package name
apt-get install -y --no-install-recommends $(node tools/test-deps.mjs --packages)
