#!/bin/sh
# conclave-entrypoint: the container image's entrypoint (docs/container.md).
#
#   conclave-entrypoint [--flag …]     writes the server's configuration from the environment
#                                      (CONCLAVE_ID, CONCLAVE_SERVERS, …) to CONCLAVE_CONFIG_FILE,
#                                      then execs `conclave server --config FILE [--flag …]`
#                                      (flags win over the file)
#   conclave-entrypoint print-config   checks the environment and prints that configuration
#   conclave-entrypoint CMD [ARG …]    execs CMD (`conclave status …`, `sh`, …)
#
# A wrong or missing value stops it with one line naming the variable, the
# value and what is expected, and exit code 2 (the server's own code for a bad
# configuration). POSIX sh: runs under dash and busybox sh.
set -euf

PROG=conclave-entrypoint
CONCLAVE_HOME=${CONCLAVE_HOME:-/opt/conclave}
CONFIG_FILE=${CONCLAVE_CONFIG_FILE:-/etc/conclave/conclave.cfg}

fail() {
  printf '%s: %s\n' "$PROG" "$*" >&2
  exit 2
}
warn() { printf '%s: warning: %s\n' "$PROG" "$*" >&2; }

# A Kubernetes service link (a Service named conclave-client gives CONCLAVE_CLIENT_PORT=tcp://…).
service_link_hint() {
  case $2 in
    tcp://* | udp://*)
      printf ' (%s looks like a Kubernetes service link variable: set enableServiceLinks: false in the pod spec)' "$1"
      ;;
  esac
}

# uint NAME VALUE MIN MAX: VALUE is a decimal integer in [MIN, MAX] (MAX empty: no upper bound).
uint() {
  case $2 in
    '' | *[!0-9]*) fail "$1 (got \"$2\"): expected a whole number$(range_text "$3" "$4")$(service_link_hint "$1" "$2")" ;;
  esac
  [ ${#2} -le 9 ] || fail "$1 (got \"$2\"): too large$(range_text "$3" "$4")"
  [ "$2" -ge "$3" ] || fail "$1 (got \"$2\"): expected a whole number$(range_text "$3" "$4")"
  [ -z "$4" ] || [ "$2" -le "$4" ] || fail "$1 (got \"$2\"): expected a whole number$(range_text "$3" "$4")"
}
# dec N: N without leading zeros (the shell's arithmetic reads 010 as octal).
dec() {
  d=$1
  while [ ${#d} -gt 1 ] && [ "${d#0}" != "$d" ]; do d=${d#0}; done
  printf '%s' "$d"
}
range_text() {
  if [ -n "$2" ]; then printf ' from %s to %s' "$1" "$2"; else printf ' of at least %s' "$1"; fi
}

CFG=''
KEYS=' '
# put KEY VALUE: one line of the generated key=value file.
put() {
  CFG="$CFG$1=$2
"
  KEYS="$KEYS$1 "
}
# setting VAR KEY MIN MAX: an optional numeric setting from the environment.
setting() {
  eval "v=\${$1-}"
  [ -z "$v" ] && return 0
  uint "$1" "$v" "$3" "$4"
  put "$2" "$(dec "$v")"
}

generate() {
  DATA_DIR=${CONCLAVE_DATA_DIR:-/data}
  CLIENT_PORT=${CONCLAVE_CLIENT_PORT:-2181}
  PEER_PORT=${CONCLAVE_PEER_PORT:-2888}
  ADMIN_PORT=${CONCLAVE_ADMIN_PORT:-8080}
  CLIENT_ADDRESS=${CONCLAVE_CLIENT_ADDRESS:-0.0.0.0}
  uint CONCLAVE_CLIENT_PORT "$CLIENT_PORT" 1 65535
  uint CONCLAVE_PEER_PORT "$PEER_PORT" 1 65535
  uint CONCLAVE_ADMIN_PORT "$ADMIN_PORT" 0 65535
  case $CLIENT_ADDRESS in
    *[!A-Za-z0-9.:_-]*) fail "CONCLAVE_CLIENT_ADDRESS (got \"$CLIENT_ADDRESS\"): expected an address or host name" ;;
  esac

  servers
  server_id

  put dataDir "$DATA_DIR"
  put clientPortAddress "$CLIENT_ADDRESS"
  put clientPort "$MY_CLIENT_PORT"
  put adminPort "$(dec "$ADMIN_PORT")"
  put serverId "$MY_ID"
  setting CONCLAVE_TICK_TIME tickTime 10 60000
  setting CONCLAVE_INIT_LIMIT initLimit 1 ''
  setting CONCLAVE_SYNC_LIMIT syncLimit 1 ''
  setting CONCLAVE_MIN_SESSION_TIMEOUT minSessionTimeout 1 ''
  setting CONCLAVE_MAX_SESSION_TIMEOUT maxSessionTimeout 1 ''
  setting CONCLAVE_MAX_CLIENT_CNXNS maxClientCnxns 0 ''
  setting CONCLAVE_SNAP_COUNT snapCount 10 ''
  setting CONCLAVE_SNAP_RETAIN_COUNT snapRetainCount 1 ''
  if [ -n "${CONCLAVE_LOG_LEVEL-}" ]; then
    case $CONCLAVE_LOG_LEVEL in
      trace | debug | info | warn | error | fatal | silent) put logLevel "$CONCLAVE_LOG_LEVEL" ;;
      *) fail "CONCLAVE_LOG_LEVEL (got \"$CONCLAVE_LOG_LEVEL\"): expected trace, debug, info, warn, error, fatal or silent" ;;
    esac
  fi
  if [ -n "${CONCLAVE_READ_ONLY-}" ]; then
    case $CONCLAVE_READ_ONLY in
      true | false) put readOnlyMode "$CONCLAVE_READ_ONLY" ;;
      *) fail "CONCLAVE_READ_ONLY (got \"$CONCLAVE_READ_ONLY\"): expected true or false" ;;
    esac
  fi
  if [ -n "${CONCLAVE_LOCAL_SESSIONS-}" ]; then
    case $CONCLAVE_LOCAL_SESSIONS in
      true | false) put localSessions "$CONCLAVE_LOCAL_SESSIONS" ;;
      *) fail "CONCLAVE_LOCAL_SESSIONS (got \"$CONCLAVE_LOCAL_SESSIONS\"): expected true or false" ;;
    esac
  fi
  if [ -n "${CONCLAVE_4LW_WHITELIST-}" ]; then
    case $CONCLAVE_4LW_WHITELIST in
      *[!a-z*,[:space:]]*) fail "CONCLAVE_4LW_WHITELIST (got \"$CONCLAVE_4LW_WHITELIST\"): expected four-letter words separated by commas, or *" ;;
    esac
    put 4lw.commands.whitelist "$CONCLAVE_4LW_WHITELIST"
  fi
  [ -z "${CONCLAVE_ALLOWED_ORIGINS-}" ] || put allowedOrigins "$CONCLAVE_ALLOWED_ORIGINS"
  secret
  extra_config
  data_dir
}

# CONCLAVE_SERVERS → server.N lines. Entries are separated by commas or white space; each is
# `id=host[:peerPort[:clientPort]][:observer]` or, without `id=`, numbered 1, 2, … in order.
servers() {
  SERVER_LINES=''
  SERVER_COUNT=0
  SERVER_IDS=' '
  list=$(printf '%s' "${CONCLAVE_SERVERS-}" | tr ',\n\t' '   ')
  explicit='' positional='' n=0
  for entry in $list; do
    n=$((n + 1))
    case $entry in
      *=*)
        explicit=1
        id=${entry%%=*}
        spec=${entry#*=}
        ;;
      *)
        positional=1
        id=$n
        spec=$entry
        ;;
    esac
    [ -z "$explicit" ] || [ -z "$positional" ] ||
      fail "CONCLAVE_SERVERS (got \"${CONCLAVE_SERVERS}\"): give every entry an id (id=host:peerPort:clientPort) or none (host, host:peerPort:clientPort: numbered 1, 2, … in order), not some"
    case $id in
      '' | *[!0-9]*) fail "CONCLAVE_SERVERS entry \"$entry\": the id before = must be a whole number from 1 to 254" ;;
    esac
    [ ${#id} -le 3 ] && [ "$id" -ge 1 ] && [ "$id" -le 254 ] ||
      fail "CONCLAVE_SERVERS entry \"$entry\": the id before = must be a whole number from 1 to 254"
    id=$(dec "$id")
    case $SERVER_IDS in
      *" $id "*) fail "CONCLAVE_SERVERS (got \"${CONCLAVE_SERVERS}\"): server id $id is given twice" ;;
    esac
    SERVER_IDS="$SERVER_IDS$id "
    # host[:peerPort[:clientPort]][:observer|:participant]
    role=''
    case $spec in
      *:observer) role=:observer spec=${spec%:observer} ;;
      *:participant) spec=${spec%:participant} ;;
    esac
    host=${spec%%:*}
    ports=''
    [ "$host" = "$spec" ] || ports=${spec#*:}
    peer=${ports%%:*}
    client=''
    [ "$peer" = "$ports" ] || client=${ports#*:}
    [ -n "$peer" ] || peer=$PEER_PORT
    [ -n "$client" ] || client=$CLIENT_PORT
    case $host in
      '' | *[!A-Za-z0-9._-]*) fail "CONCLAVE_SERVERS entry \"$entry\": expected [id=]host[:peerPort[:clientPort]][:observer] with a host name or IPv4 address" ;;
    esac
    case $peer$client in
      *[!0-9]*) fail "CONCLAVE_SERVERS entry \"$entry\": expected [id=]host[:peerPort[:clientPort]][:observer] (ports are numbers from 1 to 65535)" ;;
    esac
    uint "CONCLAVE_SERVERS entry \"$entry\": peer port" "$peer" 1 65535
    uint "CONCLAVE_SERVERS entry \"$entry\": client port" "$client" 1 65535
    SERVER_LINES="$SERVER_LINES$id $host $(dec "$peer") $(dec "$client") $role
"
    SERVER_COUNT=$n
  done
}

# CONCLAVE_ID: a number in CONCLAVE_SERVERS, or `ordinal`: the pod's ordinal (CONCLAVE_ORDINAL,
# else the number after the last - of the host name, as a StatefulSet names its pods) plus
# CONCLAVE_ID_OFFSET (default 1), so conclave-0 is server 1.
server_id() {
  id=${CONCLAVE_ID-}
  if [ "$id" = ordinal ]; then
    # HOSTNAME: set by Docker, podman and the kubelet (not by sh itself).
    # shellcheck disable=SC3028
    host=${HOSTNAME:-$(cat /proc/sys/kernel/hostname 2>/dev/null || hostname)}
    ord=${CONCLAVE_ORDINAL:-${host##*-}}
    offset=${CONCLAVE_ID_OFFSET:-1}
    uint CONCLAVE_ID_OFFSET "$offset" 0 253
    case $ord in
      '' | *[!0-9]*)
        if [ -n "${CONCLAVE_ORDINAL-}" ]; then
          fail "CONCLAVE_ORDINAL (got \"$ord\"): expected the pod's ordinal, a whole number"
        fi
        fail "CONCLAVE_ID=ordinal: the host name \"$host\" does not end in -N (a StatefulSet's pod name, such as conclave-0); set CONCLAVE_ORDINAL or a numeric CONCLAVE_ID"
        ;;
    esac
    [ ${#ord} -le 3 ] || fail "CONCLAVE_ID=ordinal: ordinal $ord is too large"
    id=$(($(dec "$ord") + $(dec "$offset")))
    [ "$id" -le 254 ] || fail "CONCLAVE_ID=ordinal: ordinal $ord + CONCLAVE_ID_OFFSET $offset = $id, past the largest server id, 254"
  elif [ -z "$id" ]; then
    [ "$SERVER_COUNT" -le 1 ] ||
      fail "CONCLAVE_ID is not set: with $SERVER_COUNT servers in CONCLAVE_SERVERS, set it to this server's id (or to ordinal in a StatefulSet)"
    id=$(printf '%s' "$SERVER_LINES" | awk 'NR == 1 { print $1 }')
    [ -n "$id" ] || id=1
  else
    uint CONCLAVE_ID "$id" 1 254
    id=$(dec "$id")
  fi
  MY_ID=$id
  MY_CLIENT_PORT=$(dec "$CLIENT_PORT")
  [ "$SERVER_COUNT" -gt 0 ] || return 0
  case $SERVER_IDS in
    *" $MY_ID "*) ;;
    *) fail "CONCLAVE_ID (got \"${CONCLAVE_ID-}\", server id $MY_ID): not one of the ids in CONCLAVE_SERVERS ($(printf '%s' "$SERVER_IDS" | sed 's/^ //; s/ $//' | tr ' ' ','))" ;;
  esac
  # This server's own peer port listens on CONCLAVE_PEER_LISTEN_ADDRESS (default 0.0.0.0:
  # every address of the container) instead of the address its host name resolves to, which a
  # StatefulSet's DNS may not publish yet when the server starts; empty: the host name.
  listen=${CONCLAVE_PEER_LISTEN_ADDRESS-0.0.0.0}
  case $listen in
    *[!A-Za-z0-9._-]*) fail "CONCLAVE_PEER_LISTEN_ADDRESS (got \"$listen\"): expected an IPv4 address or host name" ;;
  esac
  SERVER_LINES=$(printf '%s' "$SERVER_LINES" | while read -r sid shost speer sclient srole; do
    [ "$sid" != "$MY_ID" ] || [ -z "$listen" ] || shost=$listen
    printf 'server.%s=%s:%s:%s%s\n' "$sid" "$shost" "$speer" "$sclient" "$srole"
  done)
  MY_CLIENT_PORT=$(printf '%s\n' "$SERVER_LINES" | sed -n "s/^server\.$MY_ID=[^:]*:[0-9]*:\([0-9]*\).*/\1/p")
}

# The ensemble secret: CONCLAVE_SECRET (read by the server itself from its environment; never
# written to the file) or CONCLAVE_SECRET_FILE (written as secretFile). An ensemble needs one,
# unless quorum TLS is configured through CONCLAVE_EXTRA_CONFIG.
secret() {
  if [ -n "${CONCLAVE_SECRET-}" ] && [ -n "${CONCLAVE_SECRET_FILE-}" ]; then
    fail "CONCLAVE_SECRET and CONCLAVE_SECRET_FILE are both set: give one of them"
  fi
  if [ -n "${CONCLAVE_SECRET-}" ]; then
    [ ${#CONCLAVE_SECRET} -ge 8 ] ||
      fail "CONCLAVE_SECRET: the ensemble secret must be at least 8 characters (got ${#CONCLAVE_SECRET})"
  elif [ -n "${CONCLAVE_SECRET_FILE-}" ]; then
    [ -f "$CONCLAVE_SECRET_FILE" ] || fail "CONCLAVE_SECRET_FILE (got \"$CONCLAVE_SECRET_FILE\"): no such file"
    [ -r "$CONCLAVE_SECRET_FILE" ] ||
      fail "CONCLAVE_SECRET_FILE (got \"$CONCLAVE_SECRET_FILE\"): not readable by uid $(id -u)"
    first=$(head -n 1 "$CONCLAVE_SECRET_FILE" | tr -d '\r')
    [ ${#first} -ge 8 ] ||
      fail "CONCLAVE_SECRET_FILE (got \"$CONCLAVE_SECRET_FILE\"): its first line must hold a secret of at least 8 characters"
    put secretFile "$CONCLAVE_SECRET_FILE"
  elif [ "$SERVER_COUNT" -gt 1 ]; then
    case ${CONCLAVE_EXTRA_CONFIG-} in
      *quorumTlsCertFile=*) ;;
      *) fail "an ensemble ($SERVER_COUNT servers in CONCLAVE_SERVERS) needs a shared secret: set CONCLAVE_SECRET_FILE (a file whose first line is the secret) or CONCLAVE_SECRET, the same on every server" ;;
    esac
  fi
}

# CONCLAVE_EXTRA_CONFIG: further key=value lines (docs/operations.md's settings), one a line.
extra_config() {
  EXTRA=''
  [ -n "${CONCLAVE_EXTRA_CONFIG-}" ] || return 0
  EXTRA=$(printf '%s\n' "$CONCLAVE_EXTRA_CONFIG" | while IFS= read -r line; do
    line=$(printf '%s' "$line" | sed 's/^[[:space:]]*//; s/[[:space:]]*$//')
    case $line in
      '' | '#'*) continue ;;
      *=*) ;;
      *) fail "CONCLAVE_EXTRA_CONFIG line \"$line\": expected key=value" ;;
    esac
    key=$(printf '%s' "${line%%=*}" | sed 's/[[:space:]]*$//')
    case $key in
      '' | *[!A-Za-z0-9._]*) fail "CONCLAVE_EXTRA_CONFIG line \"$line\": expected key=value" ;;
      server.* | myid | serverId | ensembleSecret)
        fail "CONCLAVE_EXTRA_CONFIG line \"$line\": $key comes from CONCLAVE_SERVERS, CONCLAVE_ID or CONCLAVE_SECRET(_FILE)"
        ;;
    esac
    case $KEYS in
      *" $key "*) fail "CONCLAVE_EXTRA_CONFIG line \"$line\": $key is already set from its CONCLAVE_ variable" ;;
    esac
    printf '%s\n' "$line"
  done) || exit 2
}

# The data directory: made if missing, and writable by this user.
data_dir() {
  if [ ! -d "$DATA_DIR" ]; then
    mkdir -p "$DATA_DIR" 2>/dev/null ||
      fail "CONCLAVE_DATA_DIR (got \"$DATA_DIR\"): cannot create it as uid $(id -u)"
  fi
  [ -w "$DATA_DIR" ] && [ -x "$DATA_DIR" ] ||
    fail "CONCLAVE_DATA_DIR (got \"$DATA_DIR\"): not writable by uid $(id -u) (owner uid $(stat -c %u "$DATA_DIR" 2>/dev/null || echo '?')): give the volume to this user (chown, or fsGroup in Kubernetes)"
}

render() {
  printf '# Written by conclave-entrypoint from the environment; regenerated at every start.\n'
  printf '%s' "$CFG"
  [ -z "$SERVER_LINES" ] || printf '%s\n' "$SERVER_LINES"
  [ -z "$EXTRA" ] || printf '%s\n' "$EXTRA"
}

log_format() {
  LOG_FORMAT=${CONCLAVE_LOG_FORMAT-}
  case $LOG_FORMAT in
    '' | json | pretty | auto) ;;
    *) fail "CONCLAVE_LOG_FORMAT (got \"$LOG_FORMAT\"): expected json, pretty or auto" ;;
  esac
}

warn_unknown() {
  known=' CONCLAVE_HOME CONCLAVE_CONFIG_FILE CONCLAVE_DATA_DIR CONCLAVE_CLIENT_PORT CONCLAVE_PEER_PORT
    CONCLAVE_ADMIN_PORT CONCLAVE_CLIENT_ADDRESS CONCLAVE_SERVERS CONCLAVE_ID CONCLAVE_ORDINAL CONCLAVE_ID_OFFSET
    CONCLAVE_PEER_LISTEN_ADDRESS CONCLAVE_SECRET CONCLAVE_SECRET_FILE CONCLAVE_TICK_TIME CONCLAVE_INIT_LIMIT
    CONCLAVE_SYNC_LIMIT CONCLAVE_MIN_SESSION_TIMEOUT CONCLAVE_MAX_SESSION_TIMEOUT CONCLAVE_MAX_CLIENT_CNXNS
    CONCLAVE_SNAP_COUNT CONCLAVE_SNAP_RETAIN_COUNT CONCLAVE_LOG_LEVEL CONCLAVE_LOG_FORMAT CONCLAVE_READ_ONLY CONCLAVE_LOCAL_SESSIONS
    CONCLAVE_4LW_WHITELIST CONCLAVE_ALLOWED_ORIGINS CONCLAVE_EXTRA_CONFIG CONCLAVE_HEALTHCHECK
    CONCLAVE_HEALTHCHECK_TIMEOUT_MS CONCLAVE_STORAGE_LIMITS CONCLAVE_FAULT_FILE CONCLAVE_STORAGE_STALL_FILE '
  known=" $(printf '%s' "$known" | tr -s ' \n' '  ') "
  for name in $(env | sed -n 's/^\(CONCLAVE_[A-Za-z0-9_]*\)=.*/\1/p'); do
    case $known in *" $name "*) continue ;; esac
    case $name in *_SERVICE_HOST | *_SERVICE_PORT* | *_PORT_[0-9]* | *_PORT) continue ;; esac
    warn "$name is not a variable this image reads (docs/container.md lists them); ignored"
  done
}

case ${1-} in
  print-config)
    log_format
    generate
    render
    exit 0
    ;;
  '' | -*)
    warn_unknown
    log_format
    generate
    dir=$(dirname "$CONFIG_FILE")
    tmp="$CONFIG_FILE.tmp.$$"
    { mkdir -p "$dir" && render >"$tmp" && mv -f "$tmp" "$CONFIG_FILE"; } 2>/dev/null ||
      fail "cannot write the configuration to CONCLAVE_CONFIG_FILE (\"$CONFIG_FILE\") as uid $(id -u): a read-only root file system? mount a writable directory there (an emptyDir) or point CONCLAVE_CONFIG_FILE into one"
    set -- server --config "$CONFIG_FILE" ${LOG_FORMAT:+--log-format "$LOG_FORMAT"} "$@"
    exec node "$CONCLAVE_HOME/bin/conclave.js" "$@"
    ;;
  conclave)
    shift
    exec node "$CONCLAVE_HOME/bin/conclave.js" "$@"
    ;;
  *)
    exec "$@"
    ;;
esac
