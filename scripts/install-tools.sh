#!/usr/bin/env bash
# Installs the system programs the real-world tests and benchmarks use, from
# Debian's packages, when they are missing. Without root or apt it says what
# is missing and carries on: the tests that need a program skip with a reason.
set -u
want=(
  "iptables:iptables"
  "ip:iproute2"
  "tmux:tmux"
  "nginx:nginx"
  "wrk:wrk"
  "nghttp:nghttp2-client"
  "nghttpd:nghttp2-server"
  "rsvg-convert:librsvg2-bin"
  "prometheus:prometheus"
  "chromium:chromium"
  "chromedriver:chromium-driver"
)
missing=()
for pair in "${want[@]}"; do
  cmd=${pair%%:*}; pkg=${pair#*:}
  if ! command -v "$cmd" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$cmd" ]; then
    missing+=("$pkg")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "install-tools: missing ${missing[*]} (not root or no apt-get); tests needing them will skip" >&2
  exit 0
fi
echo "install-tools: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null 2>&1 || true
if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
  echo "install-tools: apt-get install ${missing[*]} failed; tests needing them will skip" >&2
fi
# nginx's and prometheus' packages start system instances (ports 80, 9090);
# the tests run their own, on ports of their own.
if command -v systemctl >/dev/null 2>&1; then
  systemctl stop nginx prometheus >/dev/null 2>&1 || true
fi
pkill -x nginx >/dev/null 2>&1 || true
exit 0
