# Tether remote kill: ends a server started by wrapper.sh, from a second ssh connection,
# and only if it is provably still the same process. Sent after common.sh as:
#
#   exec SH -c '<script>' SH PID PGID START BOOT_ID COOKIE GRACE_MS
#
# the fields of the wrapper's identity line, the cookie and the grace in milliseconds. Prints
# exactly one line on stdout and exits with a status that says the same:
#
#   TETHER-REMOTE-KILL v1 result=killed leader=term|kill|gone|unknown swept=N    exit 0
#   TETHER-REMOTE-KILL v1 result=refused reason=boot|start|cookie        exit 3
#   TETHER-REMOTE-KILL v1 result=error reason=usage|proc                 exit 2
#
# refused: the host rebooted (boot id differs), or PID now belongs to a process that started at
# another time or does not carry the cookie: a stranger took the pid, and nothing is signalled.
# killed: the group got SIGTERM, the leader up to GRACE_MS to exit (leader=term) before the
# group got SIGKILL (leader=kill); leader=gone when it had already exited. Then every process
# carrying the cookie was SIGKILLed; N counts those.
#
# PID 0 means the identity was never learnt (the local side died between starting ssh and
# reading the identity line): then only the cookie sweep runs, and leader=unknown. The cookie is
# 128 random bits that only this instance's processes carry, so that sweep hits nothing else.

say() {
	printf 'TETHER-REMOTE-KILL v1 %s\n' "$*"
}
error() {
	say "result=error reason=$1"
	exit 2
}
refuse() {
	say "result=refused reason=$1"
	exit 3
}

[ "$#" -eq 6 ] || error usage
pid=$1 pgid=$2 start=$3 boot=$4 cookie=$5 grace_ms=$6
for n in "$pid" "$pgid" "$start" "$grace_ms"; do
	is_number "$n" || error usage
done
is_cookie || error usage
{ read -r now </proc/sys/kernel/random/boot_id; } 2>/dev/null || error proc
if [ "$pid" = 0 ]; then
	leader=unknown
elif [ "$now" != "$boot" ]; then
	refuse boot
elif proc_stat "$pid"; then
	[ "$st_start" = "$start" ] || refuse start
	# A zombie's environment reads empty; its start time already proved it is ours, and its
	# pid cannot be reused before it is reaped.
	zombie=
	[ "$st_state" = Z ] && zombie=1
	[ -n "$zombie" ] || has_cookie "$pid" || refuse cookie
	# Signal the group only while the leader is still in it; otherwise the leader alone (the
	# sweep finds the rest).
	target=$pid
	[ "$st_pgrp" = "$pgid" ] && target=-$pgid
	pick_step
	stop "$target" "$pid" "$start"
	[ -z "$zombie" ] || leader=gone
else
	leader=gone
fi
sweep_cookie
say "result=killed leader=$leader swept=$swept"
