#!/usr/bin/env bash
# Idempotent: installs the Debian packages that the end-to-end tests start for
# real (PostgreSQL for the ledger, Prometheus scraping the service, headless
# Chromium for the embedded dashboard, Redis for the shared result cache and
# collections metadata of replicas). Skips the network
# entirely when all of them are already installed. Needs root (or sudo).
set -euo pipefail
packages=(postgresql prometheus chromium redis-server)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "system packages already installed: ${packages[*]}"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
# Other jobs may hold the dpkg lock for a while; wait instead of failing.
$SUDO apt-get -o DPkg::Lock::Timeout=600 update -q
$SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${missing[@]}"
# Debian's prometheus package starts a system service on :9090; the tests run
# their own instance on a free port, so the packaged one is not needed.
