#!/usr/bin/env bash
# `make demo`: the main job end to end on the embedded default (SQLite + SpatiaLite).
# Generates synthetic exports of both systems with known truth, creates the database, ingests
# and reconciles them, and prints what each step did.
set -euo pipefail
dir=${1:-demo}
customers=${2:-50000}
gt=".venv/bin/gridtopo"
mkdir -p "$dir"
db="sqlite:///$dir/gridtopo.db"

echo "== 1. synthetic exports of both systems ($customers customers) -> $dir/sources"
$gt generate "$dir/sources" --customers "$customers" --seed 7 --overwrite
echo
echo "== 2. database -> $dir/gridtopo.db"
rm -f "$dir/gridtopo.db" "$dir/gridtopo.db-wal" "$dir/gridtopo.db-shm"
$gt --db "$db" init
if $gt ingest --help >/dev/null 2>&1; then
    echo
    echo "== 3. ingest and reconcile"
    $gt --db "$db" ingest "$dir/sources"
fi
echo
echo "== 4. what the database holds"
$gt --db "$db" info
