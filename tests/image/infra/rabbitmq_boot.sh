#!/bin/bash
# Boot a standalone broker that loads the rendered definitions at boot (as every controller does),
# then print users, vhosts and permissions as JSON and try each "user password" line of $1.
# The rendered rabbitmq.conf itself is checked by rabbitmq_conf.escript; here only definitions count.
set -u
credentials=$1
work=$(mktemp -d)
echo "[]." > "$work/plugins"
printf 'listeners.tcp.1 = 127.0.0.1:5672\nload_definitions = /etc/rabbitmq/definitions.json\n' > "$work/rabbitmq.conf"
chmod -R a+rX "$work"
chown -R rabbitmq:rabbitmq /var/lib/rabbitmq /var/log/rabbitmq
as_rabbit() {
    runuser -u rabbitmq -- env HOME=/var/lib/rabbitmq RABBITMQ_NODENAME=rabbit@localhost \
        RABBITMQ_CONFIG_FILE="$work/rabbitmq.conf" RABBITMQ_ENABLED_PLUGINS_FILE="$work/plugins" "$@"
}
ctl() { as_rabbit /usr/lib/rabbitmq/bin/rabbitmqctl -q "$@" </dev/null; }   # rabbitmqctl reads stdin
as_rabbit /usr/lib/rabbitmq/bin/rabbitmq-server > "$work/server.log" 2>&1 &
for _ in $(seq 60); do ctl await_startup --timeout 60 >/dev/null 2>&1 && break; sleep 1; done
ctl await_startup --timeout 5 >/dev/null 2>&1 || { echo "BOOT-FAILED"; tail -30 "$work/server.log"; exit 2; }
echo "USERS $(ctl list_users --formatter json | tr -d '\n')"
echo "VHOSTS $(ctl list_vhosts --formatter json | tr -d '\n')"
echo "PERMISSIONS $(ctl list_permissions -p nova --formatter json 2>/dev/null | tr -d '\n')"
while read -r user password; do
    if ctl authenticate_user "$user" "$password" >/dev/null 2>&1; then echo "AUTH-OK $user"; else echo "AUTH-FAIL $user"; fi
done < "$credentials"
ctl stop >/dev/null 2>&1
