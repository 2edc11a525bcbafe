# Tether remote preflight: proves the remote login shell passes Tether's quoting through as a
# POSIX shell would, and that the host has what the wrapper needs. Sent as:
#
#   exec SH -c '<script>' SH PROBE
#
# PROBE is a string full of characters that shells treat differently (quotes, backslashes,
# $, `, !). Prints exactly one line on stdout:
#
#   TETHER-PREFLIGHT v1 proc=yes|no setsid=yes|no probe=PROBE
#
# A csh or fish login shell mangles the probe or fails to parse this multi-line script, so the
# line is missing or its probe differs: the caller reports "remote shell not POSIX". Anything
# else on stdout (a chatty shell rc file) would corrupt the MCP stream and is reported too.

proc=no
[ -r /proc/$$/stat ] && [ -r /proc/sys/kernel/random/boot_id ] && [ -r /proc/$$/environ ] && proc=yes
setsid=no
command -v setsid >/dev/null 2>&1 && setsid=yes
printf 'TETHER-PREFLIGHT v1 proc=%s setsid=%s probe=%s\n' "$proc" "$setsid" "$1"
