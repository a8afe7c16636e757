# Sourced by the scripts that run a server process in a directory of its own (broker.sh,
# registry.sh).

# stop_pidfile PIDFILE GRACE_SECS: SIGTERM the process named in PIDFILE, SIGKILL it if it is still
# there after GRACE_SECS, and remove PIDFILE. Nothing to do when there is no PIDFILE.
stop_pidfile() {
  local pidfile="$1" grace="$2" pid
  [ -f "$pidfile" ] || return 0
  pid="$(cat "$pidfile")"
  kill "$pid" 2>/dev/null || { rm -f "$pidfile"; return 0; }
  local deadline=$((SECONDS + grace))
  while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do
    sleep 0.1
  done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$pidfile"
}
