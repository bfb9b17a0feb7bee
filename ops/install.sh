#!/usr/bin/env bash
# Installs or upgrades quantum-p3 on a systemd host.
#
#   sudo ops/install.sh [--dry-run] [--no-restart] [--skip-npm] [--skip-user] [--replace-units] [service...]
#
# Services: governor position-state-brain reconcile-engine apply-layer (default: all four).
#
# The code goes to the WorkingDirectory OF THE INSTALLED UNITS, read back from systemd
# (`systemctl show -p WorkingDirectory --value quantum-<service>`) or, where systemd is not running,
# parsed from the installed unit file and its drop-ins. Never a guessed path: seed 002 lost two hours to
# code deployed to /root/quantum_trader while the services ran from /home/qt/quantum_trader. After the
# restart the script checks that every service's process really runs from that directory.
#
# Steps:
#  1. Install ops/systemd/quantum-<service>.service into $SYSTEMD_UNIT_DIR when missing. An installed unit
#     that differs is KEPT (it may carry a local WorkingDirectory/User); --replace-units overwrites it.
#     Then `systemctl daemon-reload`.
#  2. Resolve the WorkingDirectory of every unit; abort when one has none, or when the units disagree.
#  3. Create the unit's User= as a system user when missing (--skip-user: don't).
#  4. Copy the tracked files of this checkout (git ls-files; no node_modules, no .git) into the
#     WorkingDirectory (skipped when this checkout IS the WorkingDirectory), then `npm ci --omit=dev`
#     there (--skip-npm: don't). Code stays owned by root: the service user cannot modify it.
#  5. Copy ops/env/<service>.env to $QUANTUM_ETC_DIR/<service>.env when missing (never overwrites),
#     mode 0640, group = the service user. Edit it before the first start.
#  6. `systemctl enable` + `restart` each unit (--no-restart: don't), then verify each MainPID's cwd is
#     the WorkingDirectory, and run `p3 doctor --env-dir $QUANTUM_ETC_DIR`.
#
# Environment (for unusual layouts and for tests): SYSTEMD_UNIT_DIR (default /etc/systemd/system),
# QUANTUM_ETC_DIR (default /etc/quantum), SYSTEMCTL (default systemctl; a systemctl that does not work,
# e.g. in a container, makes the script parse unit files instead).
set -euo pipefail

SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
SYSTEMD_UNIT_DIR="${SYSTEMD_UNIT_DIR:-/etc/systemd/system}"
QUANTUM_ETC_DIR="${QUANTUM_ETC_DIR:-/etc/quantum}"
SYSTEMCTL="${SYSTEMCTL:-systemctl}"
ALL_SERVICES=(governor position-state-brain reconcile-engine apply-layer)

DRY_RUN=0 RESTART=1 NPM=1 MKUSER=1 REPLACE_UNITS=0
SERVICES=()
for arg in "$@"; do
  case "$arg" in
    --dry-run) DRY_RUN=1 ;;
    --no-restart) RESTART=0 ;;
    --skip-npm) NPM=0 ;;
    --skip-user) MKUSER=0 ;;
    --replace-units) REPLACE_UNITS=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    governor|position-state-brain|reconcile-engine|apply-layer) SERVICES+=("$arg") ;;
    *) echo "install.sh: unknown argument $arg" >&2; exit 2 ;;
  esac
done
[ ${#SERVICES[@]} -gt 0 ] || SERVICES=("${ALL_SERVICES[@]}")

log() { printf 'install: %s\n' "$*"; }
die() { printf 'install: ERROR: %s\n' "$*" >&2; exit 1; }
# Runs a command that changes the machine, or prints it under --dry-run.
run() {
  if [ "$DRY_RUN" = 1 ]; then printf 'install: [dry-run] %s\n' "$*"; else "$@"; fi
}

systemd_usable() { "$SYSTEMCTL" show -p Version --value >/dev/null 2>&1 && [ -n "$("$SYSTEMCTL" show -p Version --value 2>/dev/null)" ]; }

# Last WorkingDirectory= of a unit file and its drop-ins (later drop-ins override, as systemd does).
unit_file_value() {
  local key="$1" unit="$2" v="" f
  for f in "$SYSTEMD_UNIT_DIR/$unit" "$SYSTEMD_UNIT_DIR/$unit.d"/*.conf; do
    [ -f "$f" ] || continue
    while IFS= read -r line; do
      case "$line" in "$key="*) v="${line#"$key"=}" ;; esac
    done <"$f"
  done
  # systemd's "-" prefix (ignore if missing) is not a path character.
  printf '%s' "${v#-}"
}

unit_value() {
  local key="$1" unit="$2"
  if systemd_usable; then "$SYSTEMCTL" show -p "$key" --value "$unit"; else unit_file_value "$key" "$unit"; fi
}

# 1. Units.
changed_units=0
run mkdir -p "$SYSTEMD_UNIT_DIR"
for s in "${SERVICES[@]}"; do
  unit="quantum-$s.service"
  src_unit="$SRC/ops/systemd/$unit"
  [ -f "$src_unit" ] || die "missing $src_unit"
  if [ ! -f "$SYSTEMD_UNIT_DIR/$unit" ]; then
    run install -m 0644 "$src_unit" "$SYSTEMD_UNIT_DIR/$unit"; changed_units=1
    log "installed $SYSTEMD_UNIT_DIR/$unit"
  elif ! cmp -s "$src_unit" "$SYSTEMD_UNIT_DIR/$unit"; then
    if [ "$REPLACE_UNITS" = 1 ]; then
      run install -m 0644 "$src_unit" "$SYSTEMD_UNIT_DIR/$unit"; changed_units=1
      log "replaced $SYSTEMD_UNIT_DIR/$unit (--replace-units)"
    else
      log "kept the installed $SYSTEMD_UNIT_DIR/$unit, which differs from ops/systemd/$unit (--replace-units to overwrite)"
    fi
  fi
done
if systemd_usable; then
  [ "$changed_units" = 0 ] || run "$SYSTEMCTL" daemon-reload
else
  log "systemd is not running here: reading WorkingDirectory/User from the unit files in $SYSTEMD_UNIT_DIR"
fi

# 2. The working directory, from the units.
WORKDIR=""
SVC_USER=""
for s in "${SERVICES[@]}"; do
  unit="quantum-$s.service"
  if [ "$DRY_RUN" = 1 ] && [ ! -f "$SYSTEMD_UNIT_DIR/$unit" ]; then
    wd="$(SYSTEMD_UNIT_DIR="$SRC/ops/systemd" unit_file_value WorkingDirectory "$unit")"
    user="$(SYSTEMD_UNIT_DIR="$SRC/ops/systemd" unit_file_value User "$unit")"
  else
    wd="$(unit_value WorkingDirectory "$unit")"
    user="$(unit_value User "$unit")"
  fi
  [ -n "$wd" ] || die "$unit has no WorkingDirectory: set it explicitly in the unit (never rely on a default)"
  case "$wd" in /*) ;; *) die "$unit WorkingDirectory '$wd' is not an absolute path" ;; esac
  [ -n "$user" ] || die "$unit has no User= (the services must not run as root)"
  log "$unit: WorkingDirectory=$wd User=$user"
  if [ -z "$WORKDIR" ]; then WORKDIR="$wd"; SVC_USER="$user"
  elif [ "$wd" != "$WORKDIR" ]; then die "units disagree on WorkingDirectory ($WORKDIR vs $wd in $unit): fix the units first"
  elif [ "$user" != "$SVC_USER" ]; then die "units disagree on User ($SVC_USER vs $user in $unit)"
  fi
done
log "deploying to $WORKDIR (from the units), running as $SVC_USER"

# 3. Service user.
if [ "$MKUSER" = 1 ] && ! id "$SVC_USER" >/dev/null 2>&1; then
  run useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$SVC_USER"
fi

# 4. Code.
if [ -d "$WORKDIR" ] && [ "$(cd "$WORKDIR" && pwd -P)" = "$SRC" ]; then
  log "this checkout is the WorkingDirectory: code already in place"
else
  run mkdir -p "$WORKDIR"
  if git -C "$SRC" rev-parse --git-dir >/dev/null 2>&1; then
    log "copying $(git -C "$SRC" ls-files | wc -l) tracked files of $SRC ($(git -C "$SRC" rev-parse --short HEAD)) to $WORKDIR"
    if [ "$DRY_RUN" = 1 ]; then log "[dry-run] git ls-files | tar -> $WORKDIR"
    else (cd "$SRC" && git ls-files -z | tar --null -T - -cf -) | tar -xf - -C "$WORKDIR" --no-same-owner
    fi
  else
    log "copying $SRC to $WORKDIR (no git: everything but node_modules)"
    if [ "$DRY_RUN" = 1 ]; then log "[dry-run] tar -> $WORKDIR"
    else (cd "$SRC" && tar --exclude=./node_modules --exclude=./.git -cf - .) | tar -xf - -C "$WORKDIR" --no-same-owner
    fi
  fi
fi
if [ "$NPM" = 1 ]; then
  run sh -c "cd '$WORKDIR' && npm ci --omit=dev --no-audit --no-fund"
fi
[ "$DRY_RUN" = 1 ] || [ -f "$WORKDIR/bin/p3.mjs" ] || die "$WORKDIR/bin/p3.mjs missing after the copy"

# 5. Environment files (never overwritten).
run mkdir -p "$QUANTUM_ETC_DIR"
for s in "${SERVICES[@]}"; do
  dst="$QUANTUM_ETC_DIR/$s.env"
  if [ -f "$dst" ]; then
    log "kept $dst"
  else
    run install -m 0640 "$SRC/ops/env/$s.env" "$dst"
    if getent group "$SVC_USER" >/dev/null 2>&1; then run chgrp "$SVC_USER" "$dst"; fi
    log "created $dst from ops/env/$s.env: EDIT IT (keys, allowlist, exchange) before starting"
  fi
done

# 6. Start and verify.
if [ "$RESTART" = 1 ]; then
  systemd_usable || die "systemd is not running: cannot start the services (use --no-restart)"
  for s in "${SERVICES[@]}"; do run "$SYSTEMCTL" enable "quantum-$s.service"; done
  for s in "${SERVICES[@]}"; do run "$SYSTEMCTL" restart "quantum-$s.service"; done
  if [ "$DRY_RUN" = 0 ]; then
    sleep 3
    bad=0
    for s in "${SERVICES[@]}"; do
      pid="$("$SYSTEMCTL" show -p MainPID --value "quantum-$s.service")"
      cwd="$( [ "${pid:-0}" != 0 ] && readlink "/proc/$pid/cwd" || true)"
      if [ "$cwd" = "$WORKDIR" ]; then log "quantum-$s: running (pid $pid) from $cwd"
      else log "quantum-$s: NOT running from $WORKDIR (pid ${pid:-none}, cwd ${cwd:-none}); see journalctl -u quantum-$s -n 50"; bad=1
      fi
    done
    (cd "$WORKDIR" && env -u REDIS_URL node bin/p3.mjs doctor --env-dir "$QUANTUM_ETC_DIR" --services "$(IFS=,; echo "${SERVICES[*]}")") || bad=1
    [ "$bad" = 0 ] || die "installed, but the checks above failed"
  fi
fi
log "done"
