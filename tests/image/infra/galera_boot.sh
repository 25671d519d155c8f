#!/bin/bash
# Bootstrap a one-node Galera cluster from the rendered config (bound in place by the test), ask
# the rendered health check as HAProxy would, create hastack's SQL users ($1), ask again.
set -u
users_sql=$1
check() { printf 'GET / HTTP/1.0\r\nHost: check\r\n\r\n' | runuser -u mysql -- /usr/local/lib/hastack/galera-check | tr -d '\r'; }
mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
mariadb-install-db --user=mysql --auth-root-authentication-method=socket > /tmp/install.log 2>&1 \
    || { echo "INSTALL-FAILED"; tail /tmp/install.log; exit 2; }
mariadbd --user=mysql --wsrep-new-cluster > /tmp/mariadbd.log 2>&1 &
db=$!
for _ in $(seq 150); do mariadb -N -B -e "SELECT 1" >/dev/null 2>&1 && break; sleep 0.2; done
echo "CHECK-NO-USER $(check | head -1)"
mariadb < "$users_sql" || echo "USERS-FAILED"
mariadb -N -B -e "SHOW GLOBAL STATUS WHERE Variable_name IN
    ('wsrep_local_state_comment', 'wsrep_cluster_status', 'wsrep_ready', 'wsrep_cluster_size')" | sed 's/^/STATUS /'
mariadb -N -B -e "SHOW VARIABLES WHERE Variable_name IN ('bind_address', 'wsrep_provider_options')" | sed 's/^/VAR /'
echo "CHECK $(check | head -1)"
kill "$db"; wait "$db"
grep -E "\[ERROR\]" /tmp/mariadbd.log | sed 's/^/LOG /'
