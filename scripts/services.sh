# shellcheck shell=bash
# Redis and PostgreSQL on 127.0.0.1 for the tests: check, start or install. Source it, don't run it.
#
# Needs common.sh. Nothing here stops, reconfigures or restarts a server that already answers.

PG_ADMIN_URL=postgresql://postgres:postgres@127.0.0.1:5432/postgres

redis_up() { [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = PONG ]; }
pg_up() { pg_isready -q -h 127.0.0.1 -p 5432; }

# wait_for NAME CHECK...: poll CHECK for up to 30 seconds.
wait_for() {
    local name=$1
    shift
    for _ in $(seq 60); do
        "$@" && return 0
        sleep 0.5
    done
    die "$name does not answer on 127.0.0.1 after 30 s"
}

# Run a command as the postgres OS user (peer authentication on the local socket).
as_postgres() {
    if [ "$(id -u)" -eq 0 ]; then
        (cd / && runuser -u postgres -- "$@")
    else
        (cd / && sudo -u postgres "$@")
    fi
}

ensure_redis() {
    command -v redis-cli >/dev/null || apt_install redis-tools
    if ! redis_up; then
        command -v redis-server >/dev/null || apt_install redis-server
        # The Debian package may have started one already.
        if ! redis_up; then
            step "starting redis-server on 127.0.0.1:6379 (nothing kept on disk)"
            redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
                >/dev/null
        fi
        wait_for Redis redis_up
    fi
    step "Redis answers on 127.0.0.1:6379"
}

ensure_postgres() {
    command -v pg_isready >/dev/null || apt_install postgresql-client
    if ! pg_up; then
        [ -n "$(pg_lsclusters -h 2>/dev/null)" ] || apt_install postgresql
        pg_up || start_postgres
        wait_for PostgreSQL pg_up
    fi
    step "PostgreSQL answers on 127.0.0.1:5432"
    ensure_test_database
}

# Start the cluster that listens on port 5432 (Debian's pg_ctlcluster, outside systemd if it can).
start_postgres() {
    local cluster
    cluster=$(pg_lsclusters -h | awk '$3 == 5432 { print $1, $2; exit }')
    [ -n "$cluster" ] || die "no PostgreSQL cluster listens on port 5432 (see pg_lsclusters)"
    local skip=()
    if grep -q -- skip-systemctl-redirect "$(command -v pg_ctlcluster)"; then
        skip=(--skip-systemctl-redirect)
    fi
    step "starting PostgreSQL cluster ${cluster/ //}"
    # shellcheck disable=SC2086  # "version name" splits into two arguments on purpose
    as_root pg_ctlcluster "${skip[@]}" $cluster start
}

# Make postgresql://postgres:postgres@127.0.0.1:5432/test work: the password, then the database.
ensure_test_database() {
    if ! psql -X -q "$PG_ADMIN_URL" -c 'SELECT 1' >/dev/null 2>&1; then
        step "setting the password of role postgres to 'postgres'"
        as_postgres psql -X -q -c "ALTER ROLE postgres WITH LOGIN PASSWORD 'postgres'" \
            || die "could not set the password of role postgres as the postgres OS user"
    fi
    local found
    found=$(psql -X -At "$PG_ADMIN_URL" -c "SELECT 1 FROM pg_database WHERE datname = 'test'") \
        || die "cannot log in to PostgreSQL as postgres/postgres on 127.0.0.1:5432"
    if [ "$found" != 1 ]; then
        step "creating database test"
        psql -X -q "$PG_ADMIN_URL" -c 'CREATE DATABASE test'
    fi
    step "database test is ready"
}
