# read_env_header NAMES: reads the server's environment from stdin, where the supervisor wrote
# it before anything else (see env_header.rs): one line NAME=ENCODED for each of NAMES, in
# order, then the line TETHER-ENV-END. ENCODED is the value with each backslash doubled and each
# newline written \n, decoded here by parameter expansion alone (no command substitution, so no
# fork per variable, and trailing newlines survive). `read` takes a pipe byte by byte, so nothing
# past the end line is consumed: what follows is the server's. Each value lands in
# TETHER_ENV_<NAME>, unexported; the server's subshell exports them and the trampoline renames
# them just before its exec, so no value is ever in an argv. Exits 125 (the server never starts)
# on EOF or anything unexpected.
read_env_header() {
	# Checked whole first: the loop's field splitting would expand a glob character.
	case $1 in *[!A-Za-z0-9_\ ]*) die "bad environment variable names: $1" ;; esac
	for env_name in $1; do
		case $env_name in
		[!A-Za-z_]* | TETHER_ENV_*) die "bad environment variable name: $env_name" ;;
		esac
		env_line=
		IFS= read -r env_line || die "the input ended inside the environment header (at $env_name)"
		case $env_line in
		"$env_name="*) ;;
		*) die "the environment header does not go on with $env_name" ;;
		esac
		env_decode "${env_line#*=}"
		eval "TETHER_ENV_$env_name=\$env_value"
	done
	env_line=
	IFS= read -r env_line || die "the input ended before the environment header's end"
	[ "$env_line" = TETHER-ENV-END ] || die "the environment header does not end where expected"
	env_value= env_line= env_rest=
}

# env_decode ENCODED: sets env_value to ENCODED with \\ turned into \ and \n into a newline;
# any other escape is a malformed header.
env_decode() {
	env_value= env_rest=$1
	while :; do
		case $env_rest in
		*\\*) ;;
		*)
			env_value=$env_value$env_rest
			return
			;;
		esac
		env_value=$env_value${env_rest%%\\*}
		env_rest=${env_rest#*\\}
		case $env_rest in
		n*) env_value="$env_value
" ;;
		\\*) env_value=$env_value\\ ;;
		*) die "the environment header holds a bad escape" ;;
		esac
		env_rest=${env_rest#?}
	done
}
