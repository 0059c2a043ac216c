#!/bin/sh
# supportgw backup: the database (consistent, online) plus the files beside it.
#   backup.sh sqlite   DATA_DIR DEST        (DATA_DIR holds supportgw.db, attachments/, spool-blobs/)
#   backup.sh postgres DATABASE_URL DATA_DIR DEST
# Restore: restore.sh (same arguments). Both are what README "Backup and restore" describes,
# and tests/test_service.py runs them against SQLite and the local PostgreSQL.
set -eu
kind=$1; shift
case "$kind" in
  sqlite)
    data=$1; dest=$2
    mkdir -p "$dest"
    # .backup copies a consistent snapshot while the gateway writes (WAL); cp would not.
    sqlite3 "$data/supportgw.db" ".backup '$dest/supportgw.db'"
    sqlite3 "$dest/supportgw.db" "PRAGMA integrity_check" | grep -qx ok
    ;;
  postgres)
    url=$1; data=$2; dest=$3
    mkdir -p "$dest"
    pg_dump --format=custom --no-owner --file="$dest/supportgw.pgdump" "$url"
    ;;
  *) echo "usage: backup.sh sqlite DATA_DIR DEST | postgres URL DATA_DIR DEST" >&2; exit 2 ;;
esac
# Attachment and large-mail files are content-addressed and never rewritten: copied after the
# database, every file a row names is there (a file newer than the dump is harmless).
tar -C "$data" -czf "$dest/files.tar.gz" --ignore-failed-read $(cd "$data" && ls -d attachments spool-blobs secret.key installation.id 2>/dev/null || true)
echo "backup written to $dest"
