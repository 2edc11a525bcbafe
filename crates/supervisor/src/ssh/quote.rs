//! Quoting arguments for the remote login shell.
//!
//! ssh joins its remote arguments with spaces into one string, and sshd hands that string to
//! the user's login shell as `SHELL -c STRING`: every argument is parsed again. Single quotes
//! are the one POSIX quoting with nothing special inside (no `$`, `` ` ``, `\` or newline
//! handling), so each argument is wrapped in them and a single quote itself is written `'\''`
//! (close, backslash-escaped quote, reopen). Every other byte, invalid UTF-8 included, passes
//! as is; only NUL cannot, since no argv can carry it. Shells that are not POSIX (csh, fish)
//! treat some of this differently: the preflight probe catches them.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

/// An argument that cannot be passed to a remote command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("argument {index} holds a NUL byte, which no command line can carry: {shown:?}")]
pub struct NulError {
    /// Position of the argument in the list quoted.
    pub index: usize,
    /// The argument, lossily decoded, for the message.
    pub shown: String,
}

/// Appends `arg` single-quoted for a POSIX shell to `out`. `index` only names it in errors.
pub fn push_quoted(out: &mut Vec<u8>, arg: &[u8], index: usize) -> Result<(), NulError> {
    if arg.contains(&0) {
        return Err(NulError {
            index,
            shown: String::from_utf8_lossy(arg).into_owned(),
        });
    }
    out.reserve(arg.len() + 2);
    out.push(b'\'');
    for &b in arg {
        if b == b'\'' {
            out.extend_from_slice(b"'\\''");
        } else {
            out.push(b);
        }
    }
    out.push(b'\'');
    Ok(())
}

/// `arg` single-quoted for a POSIX shell.
pub fn quote(arg: &[u8]) -> Result<Vec<u8>, NulError> {
    let mut out = Vec::new();
    push_quoted(&mut out, arg, 0)?;
    Ok(out)
}

/// `exec 'ARG0' 'ARG1' …`: a command line the remote login shell parses back into exactly
/// these arguments and replaces itself with (the `exec` keeps the process tree flat, so the
/// command's parent is sshd).
pub fn exec_line<'a>(args: impl IntoIterator<Item = &'a OsStr>) -> Result<Vec<u8>, NulError> {
    let mut out = b"exec".to_vec();
    for (index, arg) in args.into_iter().enumerate() {
        out.push(b' ');
        push_quoted(&mut out, arg.as_bytes(), index)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> String {
        String::from_utf8(quote(s.as_bytes()).unwrap()).unwrap()
    }

    #[test]
    fn plain_words_are_wrapped() {
        assert_eq!(q("abc"), "'abc'");
        assert_eq!(q(""), "''");
        assert_eq!(q("a b\tc\nd"), "'a b\tc\nd'");
    }

    #[test]
    fn specials_stay_literal_inside_single_quotes() {
        assert_eq!(
            q("$HOME `id` \\ \" * ? ~ ! # ; & | < > ( )"),
            "'$HOME `id` \\ \" * ? ~ ! # ; & | < > ( )'"
        );
    }

    #[test]
    fn single_quotes_close_escape_reopen() {
        assert_eq!(q("'"), "''\\'''");
        assert_eq!(q("it's"), "'it'\\''s'");
        assert_eq!(q("''"), "''\\'''\\'''");
    }

    #[test]
    fn nul_is_refused_and_named() {
        let err = exec_line([OsStr::new("ok"), OsStr::new("a\0b")]).unwrap_err();
        assert_eq!(err.index, 1);
        assert!(err.to_string().contains("argument 1"), "{err}");
    }

    #[test]
    fn non_utf8_bytes_pass_unchanged() {
        let raw = [0xff, b'\'', 0x80, b'x'];
        assert_eq!(quote(&raw).unwrap(), [b"'\xff'\\''\x80x'".as_slice()].concat());
    }

    #[test]
    fn exec_line_joins_with_spaces() {
        let line = exec_line([OsStr::new("sh"), OsStr::new("-c"), OsStr::new("echo '$1'")]).unwrap();
        assert_eq!(line, b"exec 'sh' '-c' 'echo '\\''$1'\\'''");
    }

    /// The real test: a POSIX shell parses the quoted line back into the very same bytes.
    #[test]
    #[allow(clippy::disallowed_methods)] // A test may run a shell to check what it parses.
    fn shells_parse_it_back() {
        let mut every_byte: Vec<u8> = (1..=255).collect();
        every_byte.extend_from_slice(b"''\\'\n\n");
        let args: Vec<&[u8]> = vec![b"", b"'", b"a'b\"c\\d$e`f", b"-n", &every_byte, b"\n"];
        // printf %s\\0 prints each argument followed by NUL, so the split is exact.
        let mut line = b"printf '%s\\0'".to_vec();
        for (i, a) in args.iter().enumerate() {
            line.push(b' ');
            push_quoted(&mut line, a, i).unwrap();
        }
        for shell in ["sh", "dash", "bash"] {
            let out = std::process::Command::new(shell)
                .arg("-c")
                .arg(OsStr::from_bytes(&line))
                .output()
                .unwrap_or_else(|e| panic!("running {shell}: {e}"));
            assert!(out.status.success(), "{shell}: {out:?}");
            let got: Vec<&[u8]> = out.stdout.split(|&b| b == 0).collect();
            assert_eq!(&got[..args.len()], &args[..], "{shell}");
            assert_eq!(got.len(), args.len() + 1, "{shell}: trailing bytes");
        }
    }
}
