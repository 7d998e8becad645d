#!/usr/bin/env bash
# Applies the database migrations that have not been applied yet:
#
#   scripts/migrate.sh
#
# Connects with LIKES_PG_DSN (see scripts/env.sh). Runs db/migrations/*.sql in
# name order, each at most once, each in its own transaction together with its
# row in schema_migrations. A migration file must therefore not contain BEGIN
# or COMMIT itself. Stops at the first failing file, which stays unapplied.
set -euo pipefail

LIKES_LOG_TAG=migrate
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"
. "$LIKES_ROOT/scripts/common.sh"

# Notices such as "already exists, skipping" are noise here; warnings stay.
psql_likes() {
    PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=warning" \
        psql -X -q -v ON_ERROR_STOP=1 -d "$LIKES_PG_DSN" "$@"
}

# Two callers at once would both try the same file; the second would fail on
# the primary key, so let it wait instead.
mkdir -p "$LIKES_RUN_DIR"
exec 9>"$LIKES_RUN_DIR/migrate.lock"
flock -w 60 9 || die "another migration holds $LIKES_RUN_DIR/migrate.lock"

psql_likes -c "create table if not exists schema_migrations (
    version    text primary key,
    applied_at timestamptz not null default now()
)"
applied="$(psql_likes -A -t -c "select version from schema_migrations")"

mapfile -t files < <(find "$LIKES_ROOT/db/migrations" -maxdepth 1 -name '*.sql' | LC_ALL=C sort)

count=0
for file in "${files[@]}"; do
    version="$(basename "$file" .sql)"
    # The version goes into SQL text below.
    [[ "$version" =~ ^[A-Za-z0-9_.-]+$ ]] || die "bad migration file name: $file"
    if grep -qxF -- "$version" <<<"$applied"; then
        continue
    fi

    psql_likes -1 -f "$file" \
        -c "insert into schema_migrations (version) values ('$version')" \
        || die "$version failed and is not applied"
    log "applied $version"
    count=$((count + 1))
done

log "$count applied, ${#files[@]} migrations in total"
