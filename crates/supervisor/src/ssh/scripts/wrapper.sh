# Tether remote wrapper: runs one MCP server on an SSH host so that it cannot outlive its
# connection. Sent after common.sh and env_header.sh as the remote command of `ssh -T` (see
# scripts.rs):
#
#   exec SH -c '<script>' SH COOKIE GRACE_MS ENV_NAMES CMD [ARG...]
#
# SH is the POSIX shell running this script (also used for the trampoline below); COOKIE a
# Tether id (lowercase hex); GRACE_MS the milliseconds between SIGTERM and SIGKILL; ENV_NAMES
# the names (space-separated; empty for none) of environment variables whose values come first
# on stdin, in the environment header (env_header.sh): values never travel in an argv. Arguments
# arrive as positional parameters and are only ever expanded as "$@": never re-parsed by a
# shell. The `exec` makes this shell the direct child of sshd, so that sshd going away shows as
# a new parent.
#
# What it does:
# - with ENV_NAMES, reads the environment header from the channel's stdin (not a byte past its
#   end) and refuses to start CMD (exit 125) when the channel ends before it does.
# - starts CMD in a session (and process group) of its own, with TETHER_REMOTE_COOKIE=COOKIE
#   and the header's variables in its environment and the channel's stdin, stdout and stderr
#   as its own. The wrapper never reads or writes the server's data (the header is Tether's).
# - before CMD runs, one line goes to stderr (the first, unless the login shell's rc files
#   printed something before this script even started):
#     TETHER-REMOTE-ID v1 pid=PID pgid=PGID start=TICKS boot=BOOT_ID
#   PID is the server's, PGID its process group, TICKS its start time (field 22 of
#   /proc/PID/stat), BOOT_ID /proc/sys/kernel/random/boot_id: with the cookie, what a later
#   remote kill checks before it signals anything.
# - watches sshd (its parent) and the server. When sshd goes away (the client died or the
#   connection dropped) it SIGTERMs the server's group, waits up to GRACE_MS for the server to
#   exit, SIGKILLs the group. When the server exits by itself, whatever it left is SIGKILLed at
#   once. Either way it then sweeps: every process carrying the cookie, and every process
#   started after the wrapper that still holds this channel's stdio (an `env -i` escapee that
#   scrubbed the cookie but kept the pipes), is SIGKILLed.
# - exits with the server's status (128+N when a signal N ended it); 125 when it failed itself.
#
# - refuses to start CMD (exit 125) when the connection dropped before it could note its
#   parent: it was adopted already, and the watch below would wait for a parent that is gone.
#
# Not covered: a descendant that scrubbed its environment, left the group AND closed its stdio
# is invisible from here (a cgroup would see it; shells cannot make one portably).

[ "$#" -ge 4 ] || die "usage: COOKIE GRACE_MS ENV_NAMES CMD [ARG...]"
cookie=$1 grace_ms=$2 env_names=$3
shift 3
is_cookie || die "bad cookie: $cookie"
is_number "$grace_ms" || die "bad grace (milliseconds): $grace_ms"
proc_stat $$ || die "/proc is not mounted: cannot watch processes"
ppid0=$st_ppid self_start=$st_start

# The connection may have dropped before the line above ran: then this shell had already been
# adopted (by init or a subreaper), and watching that parent would never see sshd go. The sshd
# that started it reads its stdout (the channel) for as long as the session lasts, so it holds
# the other end of that pipe (stdin it may have closed already: a client that sent EOF); an
# adopter does not. The two ends of a pipe share its name in /proc (pipe:[N]); a socketpair's
# do not, so with one (or without readlink, or a parent whose fds cannot be read) only
# adoption by PID 1 is told.
chan=$(readlink /proc/$$/fd/1 2>/dev/null) || chan=
parent_has_channel() {
	[ "$ppid0" != 1 ] || return 1
	case $chan in pipe:*) ;; *) return 0 ;; esac
	fds=$(ls -l /proc/"$ppid0"/fd 2>/dev/null) || return 0
	case $fds in *"$chan"*) return 0 ;; esac
	return 1
}
parent_has_channel || die "the connection dropped before the server started (pid $ppid0, this wrapper's parent now, does not hold its channel): not starting it"

# Before the server starts: it must find its whole environment, and its input must begin
# right after the header.
[ -z "$env_names" ] || read_env_header "$env_names"

# Runs as the server's pid, in its new session, before exec'ing CMD: so the identity line is
# written before the server can write anything, and describes the server's own process. Then
# the header's variables get their own names (TETHER_ENV_FOO becomes FOO), at the last moment
# so that they apply to CMD alone, as env(1) would apply them: not to setsid or this shell.
tramp='read -r b </proc/sys/kernel/random/boot_id && read -r s </proc/$$/stat || exit 125
ident() { printf "TETHER-REMOTE-ID v1 pid=%s pgid=%s start=%s boot=%s\n" "$$" "$3" "${20}" "$b" >&2; }
ident ${s##*") "} && {
	for TETHER_ENV_NAME in $TETHER_ENV_NAMES; do
		eval "export \"\$TETHER_ENV_NAME=\$TETHER_ENV_$TETHER_ENV_NAME\"; unset TETHER_ENV_$TETHER_ENV_NAME"
	done
	unset TETHER_ENV_NAME TETHER_ENV_NAMES
	exec "$@"
}'

# An asynchronous list gets /dev/null as stdin unless redirected explicitly, so the channel's
# stdin is parked on fd 3 and handed back as the server's fd 0. The braces (not parentheses)
# keep it to one fork: $! is the very process that becomes the server.
exec 3<&0
if command -v setsid >/dev/null 2>&1; then
	# setsid(1) execs in place here: a background job of a shell without job control is never
	# a group leader, so setsid() succeeds without the fork that would change the pid.
	{
		TETHER_REMOTE_COOKIE=$cookie TETHER_ENV_NAMES=$env_names
		export TETHER_REMOTE_COOKIE TETHER_ENV_NAMES
		for env_name in $env_names; do export "TETHER_ENV_$env_name"; done
		exec setsid "$0" -c "$tramp" "$0" "$@" 3<&-
	} <&3 &
	pid=$!
	target=-$pid
else
	# Without setsid(1) (POSIX sh cannot call setsid()) the server stays in this shell's
	# session and group, which sshd made for this channel alone. What degrades: the wrapper
	# cannot signal that group without killing itself, so it signals the server by pid and
	# relies on the sweeps for the rest (a same-group child that scrubbed its environment and
	# closed its stdio survives). The identity line's pgid is then this shell's: a remote kill
	# of that group takes the wrapper with it, which is fine.
	{
		TETHER_REMOTE_COOKIE=$cookie TETHER_ENV_NAMES=$env_names
		export TETHER_REMOTE_COOKIE TETHER_ENV_NAMES
		for env_name in $env_names; do export "TETHER_ENV_$env_name"; done
		exec "$0" -c "$tramp" "$0" "$@" 3<&-
	} <&3 &
	pid=$!
	target=$pid
fi
# The server's start time tells it from a later process that reuses its pid. (A server that
# failed to exec may already be reaped by bash's SIGCHLD handler: then nothing is alive to
# watch, and `wait` below still returns its status.)
start=
proc_stat "$pid" && start=$st_start

# From here on this shell never touches the channel. Its copies move to fds 4-6, kept only to
# recognise the pipes in sweep_stdio, and its stdio becomes /dev/null: dash and bash report a
# job killed by a signal on stderr, and written to a channel whose reader is gone, that report
# would SIGPIPE this shell before it cleaned up. The stdout and stderr copies are *read* ends of
# the same pipes, opened through /proc, where the channel uses pipes: a write end held here
# would keep a server that closed both (sshd sends the channel's end of file only then) from
# ever showing the client an end of file (a socket, which cannot be opened so, keeps a copy).
if [ -p /proc/$$/fd/1 ] && (exec 5</proc/$$/fd/1) 2>/dev/null; then
	exec 5</proc/$$/fd/1
else
	exec 5>&1
fi
if [ -p /proc/$$/fd/2 ] && (exec 6</proc/$$/fd/2) 2>/dev/null; then
	exec 6</proc/$$/fd/2
else
	exec 6>&2
fi
exec 4<&3 0</dev/null 1>/dev/null 2>/dev/null 3<&-
trap '' PIPE
pick_step
poll=0.2
[ "$step" = 1 ] && poll=1

# sweep_stdio: SIGKILLs every process started since this shell that holds one of this
# channel's stdio pipes on its fd 0-2. sshd makes those pipes for this channel alone, so only
# sshd (holding the other ends: a pipe has one inode; it started earlier and is skipped anyway)
# and this session can hold them. This shell's own helpers (watcher, sleep, grep) have
# /dev/null as stdio and the pipes on fds 4-6 only.
sweep_stdio() {
	pass=0
	while [ "$pass" -lt 5 ]; do
		pass=$((pass + 1)) found=
		for d in /proc/[0-9]*; do
			p=${d#/proc/}
			[ "$p" = "$$" ] || [ "$p" = "$ppid0" ] && continue
			held=
			for n in 0 1 2; do
				for r in 4 5 6; do
					[ "$d/fd/$n" -ef "/proc/$$/fd/$r" ] && held=1
				done
			done
			[ -n "$held" ] && proc_stat "$p" && [ "$st_start" -ge "$self_start" ] &&
				kill -s KILL "$p" 2>/dev/null && found=1
		done
		[ -n "$found" ] || break
	done
}

# finish STATUS: kills whatever the server left, sweeps, exits.
finish() {
	signal_server KILL "$target" "$pid" "$start"
	sweep_cookie
	sweep_stdio
	exit "$1"
}

# The watcher: a second process, because the main shell is blocked in `wait` for the server.
# sshd going away shows as this shell's parent changing (re-parented to init or a subreaper);
# $PPID would not tell, a shell never updates it. It must not keep the channel open: it closes
# the copies and inherits /dev/null as stdio.
{
	while alive "$pid" "$start" && proc_stat $$ && [ "$st_ppid" = "$ppid0" ]; do
		sleep "$poll"
	done
	alive "$pid" "$start" && stop "$target" "$pid" "$start"
} 4<&- 5>&- 6>&- &
watcher=$!

# Asked to stop (sshd is not known to signal, but an admin might): the same teardown.
trap 'stop "$target" "$pid" "$start"; finish 129' HUP
trap 'stop "$target" "$pid" "$start"; finish 130' INT
trap 'stop "$target" "$pid" "$start"; finish 143' TERM

wait "$pid"
status=$?
# The server is reaped now: its group is signalled only while a member of ours holds it.
signal_server KILL "$target" "$pid" "$start"
wait "$watcher"
finish "$status"
