# Shared by Tether's remote scripts, which are sent as the remote command over ssh (nothing is
# installed on the host). POSIX sh; tested with dash and bash --posix. Expects $cookie to be set
# (32 hex digits) by the script that follows it.

# Prints MSG on stderr and exits 125 (the exit status of "the wrapper itself failed").
die() {
	printf 'tether-remote: %s\n' "$*" >&2
	exit 125
}

# Fails unless $1 is a non-empty string of decimal digits.
is_number() {
	case $1 in '' | *[!0-9]*) return 1 ;; esac
}

# Fails unless $cookie has the shape of a Tether id: it is searched for in environments and
# passed on in argv, so nothing but lowercase hex is accepted; and exactly 32 digits, so that no
# cookie is a prefix of another (the searches match prefixes of environment entries).
is_cookie() {
	case $cookie in '' | *[!0-9a-f]*) return 1 ;; esac
	[ "${#cookie}" -eq 32 ]
}

# proc_stat PID: sets st_state, st_ppid, st_pgrp and st_start (field 22, clock ticks since
# boot) from /proc/PID/stat; fails when the process is gone. The command name (field 2) may
# hold spaces and parentheses, so the fields are split after its last ") ".
proc_stat() {
	st_line=
	{ read -r st_line </proc/"$1"/stat; } 2>/dev/null
	[ -n "$st_line" ] || return 1
	set -- ${st_line##*") "}
	st_state=$1 st_ppid=$2 st_pgrp=$3 st_start=${20}
	[ -n "$st_start" ]
}

# has_cookie PID: the process's environment carries our cookie. A substring match is exact
# enough: the cookie is 128 random bits.
has_cookie() {
	grep -qsF -e "TETHER_REMOTE_COOKIE=$cookie" /proc/"$1"/environ
}

# alive PID START: PID still runs (not a zombie) and is the process that started at START,
# not a stranger that took the pid over.
alive() {
	proc_stat "$1" && [ "$st_start" = "$2" ] && [ "$st_state" != Z ]
}

# Fractional sleep is not POSIX: where `sleep 0.05` fails, every wait rounds up to a second.
pick_step() {
	if sleep 0.05 2>/dev/null; then step=0.05 step_ms=50; else step=1 step_ms=1000; fi
}

# signal_server SIG TARGET PID START: sends SIG to TARGET (the server PID, or -PGID for its
# group) only while TARGET is provably still the server's. PID and the group id are pinned while
# the server is unreaped (alive, or a zombie, with the same START); once it is reaped (bash reaps
# its jobs as they exit) the number is free, and a stranger may already lead a group by it: then
# the group is signalled only if one of its members carries the cookie (a group with a member
# is never renumbered), and a lone pid not at all. Fails when nothing was signalled.
signal_server() {
	if proc_stat "$3" && [ "$st_start" = "$4" ]; then
		kill -s "$1" -- "$2" 2>/dev/null
		return
	fi
	case $2 in -*) ;; *) return 1 ;; esac
	for f in $(grep -lsF -e "TETHER_REMOTE_COOKIE=$cookie" /proc/[0-9]*/environ); do
		p=${f#/proc/} p=${p%/environ}
		[ "$p" = "$$" ] && continue
		if proc_stat "$p" && [ "$st_pgrp" = "${2#-}" ]; then
			kill -s "$1" -- "$2" 2>/dev/null
			return
		fi
	done
	return 1
}

# stop TARGET PID START: SIGTERM TARGET (a pid, or -PGID for a whole group), wait up to
# $grace_ms for the leader PID to exit, then SIGKILL TARGET (each through signal_server). Sets
# leader to term (it exited within the grace) or kill.
stop() {
	signal_server TERM "$1" "$2" "$3"
	waited=0 leader=term
	while alive "$2" "$3"; do
		if [ "$waited" -ge "$grace_ms" ]; then
			leader=kill
			break
		fi
		sleep "$step"
		waited=$((waited + step_ms))
	done
	signal_server KILL "$1" "$2" "$3"
}

# sweep_cookie: SIGKILLs every process whose environment carries the cookie (escapees that
# left the group with setsid), pass after pass until one finds nothing, since a carrier may
# fork while we look. Sets swept to how many distinct pids were killed. A SIGKILLed process
# that has not exited yet is found again: hence the bound on passes.
sweep_cookie() {
	swept=0 killed=' ' pass=0
	while [ "$pass" -lt 20 ]; do
		pass=$((pass + 1)) found=
		for f in $(grep -lsF -e "TETHER_REMOTE_COOKIE=$cookie" /proc/[0-9]*/environ); do
			p=${f#/proc/} p=${p%/environ}
			[ "$p" = "$$" ] && continue
			kill -s KILL "$p" 2>/dev/null || continue
			found=1
			case $killed in *" $p "*) ;; *) killed="$killed$p " swept=$((swept + 1)) ;; esac
		done
		[ -n "$found" ] || break
	done
}
