#!/usr/bin/env bash
# Install and start what gridtopo needs from the operating system, only when it is missing:
# SpatiaLite (embedded store), PostGIS (production store) and a running PostgreSQL cluster.
# Idempotent: a machine that already has everything runs no apt-get at all.
set -euo pipefail

need=()
spatialite_present() {
    ldconfig -p 2>/dev/null | grep -q mod_spatialite \
        || ls /usr/lib/*/mod_spatialite.so >/dev/null 2>&1 \
        || ls /usr/lib/mod_spatialite.so >/dev/null 2>&1
}
spatialite_present || need+=(libsqlite3-mod-spatialite)
# Headless browser for the audit report test (tests/test_quality_report.py).
command -v chromium >/dev/null 2>&1 || need+=(chromium)
# Java 17+ for the Spark engine (`gridtopo ingest --engine spark`, tests/test_spark.py).
java -version 2>&1 | grep -Eq 'version "(1[7-9]|[2-9][0-9])' || need+=(openjdk-17-jre-headless)

if [ "${GRIDTOPO_SKIP_POSTGRES:-}" != "1" ]; then
    command -v pg_lsclusters >/dev/null 2>&1 || need+=(postgresql)
    pg_major=$(ls /etc/postgresql 2>/dev/null | sort -n | tail -n 1 || true)
    pg_major=${pg_major:-15}
    ls /usr/share/postgresql/"$pg_major"/extension/postgis.control >/dev/null 2>&1 \
        || need+=("postgresql-$pg_major-postgis-3")
fi

if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" != "0" ]; then SUDO=sudo; else SUDO=; fi
    echo "setup: installing system packages: ${need[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

if [ "${GRIDTOPO_SKIP_POSTGRES:-}" != "1" ]; then
    pg_major=$(ls /etc/postgresql | sort -n | tail -n 1)
    if ! pg_lsclusters -h | awk -v v="$pg_major" '$1==v && $2=="main"' | grep -q online; then
        echo "setup: starting PostgreSQL $pg_major"
        pg_ctlcluster --skip-systemctl-redirect "$pg_major" main start
    fi
fi
