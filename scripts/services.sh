#!/usr/bin/env bash
# Installs (Debian) and starts what the test suite talks to, without systemd:
# PostgreSQL on 127.0.0.1:5432 (trust auth for local TCP), Redis on 127.0.0.1:6379,
# Chromium for browser tests, docker-compose to check the compose file, Tesseract for OCR,
# Node and npm to bundle the reader's viewer (`services.sh node` installs only those), Orthanc
# with its DICOMweb plugin (a hospital's server, for the pull tests), dicom3tools (dciodvfy)
# to check that anonymized DICOM stays valid, bubblewrap, podman and a static busybox for the
# algorithm-container runner (evaluator.containers) and its tests, and R (pROC, boot) to check
# the evaluator's statistics.
set -euo pipefail

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_updated=no
apt_install() {
  if [ "$apt_updated" = no ]; then as_root apt-get update -qq; apt_updated=yes; fi
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

missing=()
command -v npm >/dev/null || missing+=(nodejs npm)
if [ "${1:-}" = node ]; then
  if [ ${#missing[@]} -gt 0 ]; then echo "services: installing ${missing[*]}"; apt_install "${missing[@]}"; fi
  exit 0
fi
command -v pg_ctlcluster >/dev/null || missing+=(postgresql)
command -v redis-server >/dev/null || missing+=(redis-server)
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v docker-compose >/dev/null || missing+=(docker-compose)
command -v tesseract >/dev/null || missing+=(tesseract-ocr)
[ -x /usr/sbin/Orthanc ] || missing+=(orthanc)
[ -e /usr/share/orthanc/plugins/libOrthancDicomWeb.so ] || missing+=(orthanc-dicomweb)
command -v dciodvfy >/dev/null || missing+=(dicom3tools)
command -v bwrap >/dev/null || missing+=(bubblewrap)
command -v podman >/dev/null || missing+=(podman)
[ -x /bin/busybox ] || missing+=(busybox-static)
# R with pROC and boot: the evaluator's statistics are checked against them
command -v Rscript >/dev/null || missing+=(r-base-core)
[ -d /usr/lib/R/site-library/pROC ] || missing+=(r-cran-proc)
[ -d /usr/lib/R/site-library/boot ] || [ -d /usr/lib/R/library/boot ] || missing+=(r-cran-boot)
if [ ${#missing[@]} -gt 0 ]; then
  echo "services: installing ${missing[*]}"
  apt_install "${missing[@]}"
fi

if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  version=$(ls /etc/postgresql | sort -n | tail -1)
  hba=/etc/postgresql/$version/main/pg_hba.conf
  # The tests connect as postgres over TCP without a password, as on our machines.
  if ! grep -q "^host all all 127.0.0.1/32 trust" "$hba"; then
    as_root sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
  fi
  echo "services: starting PostgreSQL $version"
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start
  for _ in $(seq 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi
pg_isready -h 127.0.0.1 -p 5432

if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "services: starting Redis"
  as_root mkdir -p /var/lib/redis /var/log/redis
  as_root redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/mica.log
  for _ in $(seq 30); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 1; done
fi
echo "redis: $(redis-cli -h 127.0.0.1 -p 6379 ping)"
