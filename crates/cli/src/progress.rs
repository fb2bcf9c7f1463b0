//! Progress bars on stderr that log lines do not tear: every tracing line is written with
//! the bars lifted, then the bars are drawn again below it. Bars are hidden when stderr is
//! not a terminal.

use std::io::Write;
use std::sync::LazyLock;

use indicatif::{MultiProgress, ProgressBar};
use tracing_subscriber::fmt::MakeWriter;

static BARS: LazyLock<MultiProgress> = LazyLock::new(MultiProgress::new);

/// A new bar below any others, drawn on stderr if it is a terminal and `visible`.
pub fn bar(visible: bool) -> ProgressBar {
    if visible {
        BARS.add(ProgressBar::new(0))
    } else {
        ProgressBar::hidden()
    }
}

/// A `MakeWriter` for tracing: stderr, with the progress bars lifted while a line is
/// written.
#[derive(Debug, Clone, Copy, Default)]
pub struct StderrBelowBars;

/// One log line, buffered until it is complete.
pub struct LogLine(Vec<u8>);

impl Write for LogLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LogLine {
    fn drop(&mut self) {
        let line = std::mem::take(&mut self.0);
        BARS.suspend(|| {
            let _ = std::io::stderr().write_all(&line);
        });
    }
}

impl<'a> MakeWriter<'a> for StderrBelowBars {
    type Writer = LogLine;

    fn make_writer(&'a self) -> LogLine {
        LogLine(Vec::with_capacity(256))
    }
}
