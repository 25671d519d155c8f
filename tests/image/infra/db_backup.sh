#!/bin/bash
# Backups on a one-node Galera cluster from the rendered config (bound in place by the test), with
# the real mariadb-backup: a full, rows added, two chained incrementals, a row after them, the table dropped;
# then the second incremental's chain prepared, mariadbd stopped, the datadir replaced, the node
# bootstrapped from the restored grastate.dat. Then two more fulls with KEEP 1: the first chain goes.
# Last, the timers' command on a node that is alone in its cluster (so the one to take it) and has no full
# backup yet: a scheduled incremental is taken as a full.
# $1: the db-backup program, $2: the node's address. Lines prefixed with a word are what the test reads.
set -u
prog=$1
root=/var/backups/hastack-db
sql() { mariadb -N -B -e "$1"; }
start() {
    mariadbd --user=mysql "$@" > /tmp/mariadbd.log 2>&1 &
    db=$!
    for _ in $(seq 150); do sql "SELECT 1" >/dev/null 2>&1 && return 0; sleep 0.2; done
    echo "START-FAILED"; tail -20 /tmp/mariadbd.log; exit 2
}
stop() { kill "$db"; wait "$db"; }
mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
mariadb-install-db --user=mysql --auth-root-authentication-method=socket > /tmp/install.log 2>&1 \
    || { echo "INSTALL-FAILED"; tail /tmp/install.log; exit 2; }
start --wsrep-new-cluster
sql "CREATE DATABASE shop; CREATE TABLE shop.t (id INT PRIMARY KEY); INSERT INTO shop.t VALUES (1),(2),(3)"
echo "FULL $(python3 "$prog" backup $root full 2)"
sql "INSERT INTO shop.t VALUES (4)"
echo "INCR1 $(python3 "$prog" backup $root incr 2)"
sleep 1
sql "INSERT INTO shop.t VALUES (5)"
echo "INCR $(python3 "$prog" backup $root incr 2)"
sql "INSERT INTO shop.t VALUES (6); DROP TABLE shop.t"
echo "LIST $(python3 "$prog" list $root)"
incr=$(python3 "$prog" list $root | python3 -c 'import json,sys; print(json.load(sys.stdin)["backups"][-1]["name"])')
echo "PREPARE $(python3 "$prog" prepare $root "$incr" /var/tmp/restore)"
out=$(python3 "$prog" install /var/tmp/restore /var/lib/mysql 2>&1); rc=$?; echo "RUNNING $out rc=$rc"
stop
echo "INSTALL $(python3 "$prog" install /var/tmp/restore /var/lib/mysql)"
sed 's/^/GRASTATE /' /var/lib/mysql/grastate.dat
echo "OWNERS $(find /var/lib/mysql ! -user mysql | wc -l)"
start --wsrep-new-cluster
echo "ROWS $(sql 'SELECT GROUP_CONCAT(id ORDER BY id) FROM shop.t')"
sql "SHOW GLOBAL STATUS WHERE Variable_name IN ('wsrep_cluster_status', 'wsrep_last_committed',
    'wsrep_local_state_uuid')" | sed 's/^/STATUS /'
echo "ASIDE $(ls -d /var/lib/mysql.pre-restore-* | wc -l)"
sleep 1
echo "FULL2 $(python3 "$prog" backup $root full 1)"
out=$(python3 "$prog" backup /var/backups/empty incr 1 2>&1); rc=$?; echo "EARLY-INCR $out rc=$rc"
echo "AFTER $(python3 "$prog" list $root)"
echo "SCHED $(python3 "$prog" scheduled /var/backups/sched incr 1 "$2" 10.77.0.250 "$2")"
stop
grep -E "\[ERROR\]" /tmp/mariadbd.log | sed 's/^/LOG /'
