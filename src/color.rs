//! Whether output gets ANSI colour: `--color`, then `NO_COLOR`, then "is it a terminal".

use std::ffi::OsStr;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::ValueEnum;

/// The `--color` flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum ColorChoice {
    /// Colour when the stream is a terminal and `NO_COLOR` is unset or empty.
    #[default]
    Auto,
    /// Always colour, even into files and pipes (and despite `NO_COLOR`).
    Always,
    /// Never colour.
    Never,
}

/// The decision itself: an explicit `always`/`never` wins; `auto` colours a terminal
/// unless `NO_COLOR` holds a non-empty value (<https://no-color.org>).
pub fn decide(choice: ColorChoice, no_color: Option<&OsStr>, is_terminal: bool) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => is_terminal && no_color.is_none_or(|v| v.is_empty()),
    }
}

/// Which stream a decision is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// [`decide`] for `stream` of this process, with this process's `NO_COLOR`.
pub fn for_stream(choice: ColorChoice, stream: Stream) -> bool {
    let tty = match stream {
        Stream::Stdout => std::io::stdout().is_terminal(),
        Stream::Stderr => std::io::stderr().is_terminal(),
    };
    decide(choice, std::env::var_os("NO_COLOR").as_deref(), tty)
}

static STDOUT: AtomicBool = AtomicBool::new(false);
static STDERR: AtomicBool = AtomicBool::new(false);

/// Records the decision for both streams once, at start-up; [`enabled`] reads it.
pub fn init(choice: ColorChoice) {
    STDOUT.store(for_stream(choice, Stream::Stdout), Ordering::Relaxed);
    STDERR.store(for_stream(choice, Stream::Stderr), Ordering::Relaxed);
}

/// Whether text written to `stream` may hold colour (false until [`init`]).
pub fn enabled(stream: Stream) -> bool {
    match stream {
        Stream::Stdout => STDOUT.load(Ordering::Relaxed),
        Stream::Stderr => STDERR.load(Ordering::Relaxed),
    }
}

/// The `--color` value written on the command line, read before clap parses it so that
/// clap's own help and errors follow it too. The last one wins, as clap would have it.
pub fn from_args<I, S>(args: I) -> ColorChoice
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut choice = ColorChoice::Auto;
    let mut next_is_value = false;
    for arg in args {
        let Some(arg) = arg.as_ref().to_str() else {
            next_is_value = false;
            continue;
        };
        if arg == "--" {
            break;
        }
        let value = if next_is_value {
            next_is_value = false;
            Some(arg)
        } else if arg == "--color" {
            next_is_value = true;
            None
        } else {
            arg.strip_prefix("--color=")
        };
        if let Some(parsed) = value.and_then(|v| ColorChoice::from_str(v, true).ok()) {
            choice = parsed;
        }
    }
    choice
}

/// Styles for the human view; plain text when colour is off.
#[derive(Debug, Clone, Copy)]
pub struct Paint {
    on: bool,
}

impl Paint {
    /// Paints for `stream` as decided by [`init`].
    pub fn for_stream(stream: Stream) -> Self {
        Paint::new(enabled(stream))
    }

    /// Colour on or off, explicitly.
    pub fn new(on: bool) -> Self {
        Paint { on }
    }

    fn wrap(self, code: &str, text: &str) -> String {
        if self.on {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    /// Failures.
    pub fn red(self, text: &str) -> String {
        self.wrap("31", text)
    }

    /// Changes and warnings.
    pub fn yellow(self, text: &str) -> String {
        self.wrap("33", text)
    }

    /// Creations and success.
    pub fn green(self, text: &str) -> String {
        self.wrap("32", text)
    }

    /// Headings (host names, RECAP).
    pub fn bold(self, text: &str) -> String {
        self.wrap("1", text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_colours_only_a_terminal_without_no_color() {
        let set = Some(OsStr::new("1"));
        let empty = Some(OsStr::new(""));
        assert!(decide(ColorChoice::Auto, None, true));
        assert!(!decide(ColorChoice::Auto, None, false));
        assert!(!decide(ColorChoice::Auto, set, true));
        assert!(
            decide(ColorChoice::Auto, empty, true),
            "empty NO_COLOR is unset"
        );
    }

    #[test]
    fn the_flag_wins_over_no_color_and_the_stream() {
        let set = Some(OsStr::new("1"));
        assert!(decide(ColorChoice::Always, set, false));
        assert!(!decide(ColorChoice::Never, None, true));
    }

    #[test]
    fn the_flag_is_found_before_clap_parses() {
        assert_eq!(from_args(["kprov", "--help"]), ColorChoice::Auto);
        assert_eq!(
            from_args(["kprov", "--color", "never", "validate"]),
            ColorChoice::Never
        );
        assert_eq!(
            from_args(["kprov", "--color=always", "--color=never"]),
            ColorChoice::Never
        );
        assert_eq!(
            from_args(["kprov", "--color=ALWAYS", "x"]),
            ColorChoice::Always
        );
        assert_eq!(
            from_args(["kprov", "lab", "ssh", "h", "--", "--color=always"]),
            ColorChoice::Auto
        );
    }

    #[test]
    fn paint_is_plain_when_off() {
        assert_eq!(Paint::new(false).red("x"), "x");
        assert_eq!(Paint::new(true).red("x"), "\x1b[31mx\x1b[0m");
    }
}
