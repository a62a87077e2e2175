#!/usr/bin/env bash
# A throwaway PostgreSQL + PostGIS server for the service's tests (tests/api), from Debian's packages.
#
#   .ci/postgres.sh install        apt-get install postgresql + PostGIS when they are missing (root)
#   .ci/postgres.sh start DIR      new cluster in DIR (must not exist or be empty), started on a free
#                                  port of 127.0.0.1 with a database "pavement" holding PostGIS; prints
#                                  its SQLAlchemy URL (also in DIR/url)
#   .ci/postgres.sh stop DIR       stop it and delete DIR
#
# Locally:
#   .ci/postgres.sh install
#   export PAVEMENT_TEST_POSTGRES_URL=$(.ci/postgres.sh start /tmp/pavement-pg)
#   .venv/bin/pytest tests/api
#   .ci/postgres.sh stop /tmp/pavement-pg
#
# PostgreSQL refuses to run as root: as root the server runs as the user "postgres" (made by the
# package) or "nobody". The superuser "pavement" has a random password, local to DIR.
set -euo pipefail

die() { echo "postgres.sh: $*" >&2; exit 1; }

pg_bin() {  # the newest installed server's bin folder
    local initdb
    initdb=$(ls -d /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -n 1)
    [[ -n $initdb ]] || return 1
    dirname "$initdb"
}

has_postgis() {  # PostGIS for that server
    local bin version
    bin=$(pg_bin) || return 1
    version=$(basename "$(dirname "$bin")")
    [[ -f /usr/share/postgresql/$version/extension/postgis.control ]]
}

install() {
    if has_postgis; then
        return 0
    fi
    [[ $(id -u) == 0 ]] || die "PostgreSQL + PostGIS are missing; as root run: apt-get install postgresql postgresql-postgis"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # postgresql-postgis: PostGIS for Debian's default server version, whichever that is
    apt-get install -y -qq --no-install-recommends postgresql postgresql-postgis >/dev/null
    has_postgis || die "installed postgresql and postgresql-postgis, but PostGIS is still not found"
}

free_port() {
    local port
    for _ in $(seq 200); do
        port=$((20000 + RANDOM % 30000))
        if ! (: </dev/tcp/127.0.0.1/"$port") 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    die "no free port found on 127.0.0.1"
}

as_owner() {  # run a server command as the cluster's owner (not root)
    if [[ $(id -u) == 0 ]]; then
        runuser -u "$OWNER" -- "$@"
    else
        "$@"
    fi
}

start() {
    local dir=$1 bin port password url
    umask 077  # the folder holds the password
    bin=$(pg_bin) || die "PostgreSQL is not installed; run: $0 install"
    has_postgis || die "PostGIS is not installed for $(dirname "$bin"); run: $0 install"
    mkdir -p "$dir"
    [[ -z $(ls -A "$dir") ]] || die "$dir is not empty; give a new folder (stop an old server with: $0 stop $dir)"
    dir=$(cd "$dir" && pwd)
    OWNER=$(id -un)
    if [[ $(id -u) == 0 ]]; then
        OWNER=postgres
        id -u postgres >/dev/null 2>&1 || OWNER=nobody
        chown "$OWNER" "$dir"
    fi
    password=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
    as_owner bash -c "printf '%s\n' '$password' > '$dir/password' && mkdir '$dir/socket'"
    # throwaway: no fsync; C collation and UTF-8, as the service's Japanese text needs
    as_owner "$bin/initdb" -D "$dir/data" -U pavement --pwfile="$dir/password" --auth-local=scram-sha-256 \
        --auth-host=scram-sha-256 -E UTF8 --no-locale --no-sync >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
    port=$(free_port)
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 -o \
        "-c listen_addresses=127.0.0.1 -p $port -k $dir/socket -c fsync=off -c synchronous_commit=off \
         -c full_page_writes=off -c max_connections=200" start >/dev/null \
        || { cat "$dir/server.log" >&2; die "the server did not start"; }
    PGPASSWORD=$password "$bin/psql" -h 127.0.0.1 -p "$port" -U pavement -d postgres -qAt -v ON_ERROR_STOP=1 \
        -c "CREATE DATABASE pavement" >/dev/null
    PGPASSWORD=$password "$bin/psql" -h 127.0.0.1 -p "$port" -U pavement -d pavement -qAt -v ON_ERROR_STOP=1 \
        -c "CREATE EXTENSION postgis" >/dev/null
    url="postgresql+psycopg://pavement:$password@127.0.0.1:$port/pavement"
    echo "$url" >"$dir/url"
    echo "$url"
}

stop() {
    local dir=$1 bin
    [[ -d $dir/data ]] || { rm -rf "$dir"; return 0; }
    bin=$(pg_bin) || die "PostgreSQL is not installed"
    OWNER=$(stat -c %U "$dir/data")
    as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || true
    rm -rf "$dir"
}

case ${1:-} in
    install) install ;;
    start) [[ $# == 2 ]] || die "usage: $0 start DIR"; start "$2" ;;
    stop) [[ $# == 2 ]] || die "usage: $0 stop DIR"; stop "$2" ;;
    *) die "usage: $0 install | start DIR | stop DIR" ;;
esac
