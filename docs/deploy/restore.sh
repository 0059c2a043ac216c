#!/bin/sh
# supportgw restore, with the gateway stopped (systemctl stop supportgw):
#   restore.sh sqlite   BACKUP DATA_DIR
#   restore.sh postgres BACKUP DATABASE_URL DATA_DIR    (the database must exist, may be empty)
set -eu
kind=$1; shift
case "$kind" in
  sqlite)
    src=$1; data=$2
    mkdir -p "$data"
    rm -f "$data/supportgw.db-wal" "$data/supportgw.db-shm"  # a stale WAL would be replayed onto the copy
    cp "$src/supportgw.db" "$data/supportgw.db"
    ;;
  postgres)
    src=$1; url=$2; data=$3
    mkdir -p "$data"
    pg_restore --clean --if-exists --no-owner --exit-on-error --dbname="$url" "$src/supportgw.pgdump"
    ;;
  *) echo "usage: restore.sh sqlite BACKUP DATA_DIR | postgres BACKUP URL DATA_DIR" >&2; exit 2 ;;
esac
tar -C "$data" -xzf "$src/files.tar.gz"
echo "restored; run 'supportgw db upgrade' and 'supportgw health', then start the gateway"
