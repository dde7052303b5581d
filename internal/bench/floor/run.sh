#!/bin/sh
# make bench-floor: the floor under the notification path (see setup.sql) on DATABASE_URL's
# server, in a database bench_floor of its own that it drops at the end.
#   BREACHFLOW_BENCH_TENANTS (100000), BREACHFLOW_BENCH_CONTACTS (3): the size, as bench's
#   BREACHFLOW_BENCH_FLOOR_CLIENTS (the cores): connections writing pages at the same time
set -eu
url=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
tenants=${BREACHFLOW_BENCH_TENANTS:-100000}
contacts=${BREACHFLOW_BENCH_CONTACTS:-3}
clients=${BREACHFLOW_BENCH_FLOOR_CLIENTS:-$(nproc)}
dir=$(dirname "$0")
db=bench_floor
dburl=$(printf '%s' "$url" | sed -E "s#(//[^/]*)/[^?]*#\1/$db#")
case "$dburl" in */$db*) ;; *) dburl="$dburl/$db" ;; esac

psql "$url" -qc "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" 2>/dev/null
trap 'psql "$url" -qc "DROP DATABASE IF EXISTS $db"' EXIT
echo "floor: $tenants tenants × $contacts contacts"
psql "$dburl" -q -v tenants="$tenants" -v contacts="$contacts" -f "$dir/setup.sql"

notices=$((tenants * contacts))
pages=$(((notices + 999) / 1000))
per=$(((pages + clients - 1) / clients)) # transactions per connection; pages past the last are empty
for step in send events; do
	start=$(date +%s.%N)
	pgbench -n -c "$clients" -j "$clients" -t "$per" -D notices="$notices" -D contacts="$contacts" \
		-f "$dir/$step.sql" "$dburl" >/dev/null
	end=$(date +%s.%N)
	case $step in
	send) what="each notice written once as sent, its tenant marked notified" ;;
	events) what="one delivery event per notice" ;;
	esac
	echo "notifying: $what — $pages pages of 1,000, a page per transaction, $clients connections: $(awk "BEGIN { printf \"%.2f\", $end - $start }") s"
done
