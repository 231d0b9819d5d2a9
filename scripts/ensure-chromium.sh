#!/usr/bin/env bash
# Headless Chromium renders the therapist's report in the tests (the report
# must show every chart without console errors). Installs Debian's
# `chromium` package when missing, the same way `postmon services up`
# installs mosquitto and influxdb: apt-get, retried after an update.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "error: chromium is missing and apt-get is not available; install Chromium" >&2
  exit 2
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo -n"
fi
export DEBIAN_FRONTEND=noninteractive
PKGS="chromium fonts-dejavu-core"
echo "installing ${PKGS} with apt-get ..."
if ! $SUDO apt-get install -y -q --no-install-recommends $PKGS >/dev/null 2>&1; then
  $SUDO apt-get update -q >/dev/null
  $SUDO apt-get install -y -q --no-install-recommends $PKGS >/dev/null
fi
command -v chromium >/dev/null
