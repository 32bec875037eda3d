#!/usr/bin/env bash
# Make sure the local services the integration tests use are answering on loopback, starting
# any that are down with the machine's own start commands. Prints what it started.
#
# It only ever starts: a service already answering is left as it is, and nothing is stopped,
# restarted or killed (other work on the machine may be using it).
set -uo pipefail

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start_if_down() {
    local name=$1 port=$2; shift 2
    if ! listening "$port"; then
        echo "starting $name (port $port not answering)"
        "$@" >/dev/null 2>&1 || echo "warning: could not start $name"
        for _ in $(seq 1 60); do listening "$port" && break; sleep 0.5; done
        listening "$port" || echo "warning: $name still not answering on port $port"
    fi
}

mkdir -p /var/lib/redis /var/log/redis /var/lib/nats-server 2>/dev/null || true
start_if_down postgresql 5432 bash -c 'pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql | sort -V | tail -1) main start'
start_if_down redis 6379 redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
start_if_down rabbitmq 5672 rabbitmq-server -detached
start_if_down nats 4222 start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log
exit 0
