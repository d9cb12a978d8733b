# Sourced by the bench scripts: the bench's JWT secret, a raised descriptor limit, and helpers to
# pick a free loopback port and to wait (bounded) until something listens on one.
SECRET=switchboard-bench-secret-0123456789abcdef
ulimit -n 65536 2>/dev/null || true

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
wait_port() { for _ in $(seq 200); do ss -Hltn "sport = :$1" | grep -q . && return 0; sleep 0.05; done; echo "$(basename "$0"): nothing listens on $1" >&2; return 1; }
