//! `meshtrace completions SHELL` and `meshtrace man [COMMAND] [--out-dir DIR]`: the shell
//! completion scripts (clap_complete) and the manual pages (clap_mangen), both made from the
//! same clap definition as the command line itself, so they never fall behind it.

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use clap::Args;

use super::EXIT_OK;

/// Arguments of `completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Arguments of `man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Print this command's page (e.g. `trace`) instead of meshtrace's own.
    pub command: Option<String>,
    /// Write every page (meshtrace.1 and meshtrace-COMMAND.1 for each command) into this
    /// folder instead of printing one.
    #[arg(long, value_name = "DIR", conflicts_with = "command")]
    pub out_dir: Option<PathBuf>,
}

/// Print the completion script of `cmd` (`cli::command()`).
pub fn run(a: CompletionsArgs, mut cmd: clap::Command) -> Result<i32> {
    let mut script = Vec::new();
    clap_complete::generate(a.shell, &mut cmd, "meshtrace", &mut script);
    let mut out = crate::report::stdout();
    crate::report::write_script(&mut out, &String::from_utf8_lossy(&script))?;
    Ok(EXIT_OK)
}

/// The page of `cmd` (already built), named as `man` names it.
fn page(cmd: clap::Command, name: &str) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd.name(name.to_string()).bin_name(name.replace('-', " ")))
        .manual("meshtrace manual")
        .source(format!("meshtrace {}", env!("CARGO_PKG_VERSION")))
        .render(&mut buf)
        .context("cannot render the manual page")?;
    Ok(buf)
}

/// Every page: meshtrace's own, then one per command (`meshtrace-trace`, …).
fn pages(mut cmd: clap::Command) -> Result<Vec<(String, Vec<u8>)>> {
    cmd.build();
    let mut out = vec![("meshtrace".to_string(), page(cmd.clone(), "meshtrace")?)];
    for sub in cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        let name = format!("meshtrace-{}", sub.get_name());
        out.push((name.clone(), page(sub.clone(), &name)?));
    }
    Ok(out)
}

/// Print one page of `cmd` (`cli::command()`), or write them all with `--out-dir`.
pub fn man(a: ManArgs, cmd: clap::Command) -> Result<i32> {
    let all = pages(cmd)?;
    if let Some(dir) = a.out_dir {
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        for (name, text) in &all {
            let p = dir.join(format!("{name}.1"));
            std::fs::write(&p, text).with_context(|| format!("cannot write {}", p.display()))?;
        }
        crate::report::write_script(
            &mut crate::report::stdout(),
            &format!("wrote {} manual pages to {}\n", all.len(), dir.display()),
        )?;
        return Ok(EXIT_OK);
    }
    let want = match &a.command {
        Some(c) => format!("meshtrace-{c}"),
        None => "meshtrace".to_string(),
    };
    let Some((_, text)) = all.iter().find(|(n, _)| *n == want) else {
        let names: Vec<&str> = all[1..]
            .iter()
            .map(|(n, _)| n.trim_start_matches("meshtrace-"))
            .collect();
        anyhow::bail!(
            "there is no command {:?}: the pages are meshtrace's own (`meshtrace man`) and those of {}",
            a.command.unwrap_or_default(),
            names.join(", ")
        );
    };
    crate::report::write_script(&mut crate::report::stdout(), &String::from_utf8_lossy(text))?;
    Ok(EXIT_OK)
}
