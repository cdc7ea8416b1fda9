//! The rendered Dockerfile's build stage, replayed without Docker: the build
//! context as Docker sees it (`.dockerignore` applied), then each `WORKDIR`,
//! `COPY` and `RUN` of the build stage in a scratch root with the local
//! toolchain, and finally every `COPY --from=<build stage>` source of the
//! last stage must exist. No Docker daemon runs here, so this is what stops a
//! layout change from failing only on GitHub.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::command::{own_cargo_environment, run_command};
use crate::project::Project;

/// One instruction: its line number, keyword and arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    pub line: usize,
    pub keyword: String,
    pub args: String,
}

/// Parses a Dockerfile: comments and blank lines dropped, `\` continuations
/// joined.
pub fn parse(dockerfile: &str) -> Vec<Instruction> {
    let mut instructions = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (index, raw) in dockerfile.lines().enumerate() {
        let line = raw.trim();
        if pending.is_none() && (line.is_empty() || line.starts_with('#')) {
            continue;
        }
        if pending.is_some() && line.starts_with('#') {
            continue;
        }
        let (start, mut text) = pending.take().unwrap_or((index + 1, String::new()));
        match line.strip_suffix('\\') {
            Some(head) => {
                text.push_str(head.trim_end());
                text.push(' ');
                pending = Some((start, text));
            }
            None => {
                text.push_str(line);
                let (keyword, args) = text.split_once(char::is_whitespace).unwrap_or((&text, ""));
                instructions.push(Instruction {
                    line: start,
                    keyword: keyword.to_ascii_uppercase(),
                    args: args.trim().to_owned(),
                });
            }
        }
    }
    instructions
}

/// The files of `dir` Docker sends as the build context, relative to `dir`.
/// The last `.dockerignore` pattern that matches a path or one of its
/// parents decides (`*` and `?` within a segment, `**` across them).
pub fn context(dir: &Path, dockerignore: &str) -> Result<Vec<PathBuf>, String> {
    let patterns = dockerignore
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let (negated, pattern) = match line.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, line),
            };
            let pattern = pattern.trim_start_matches('/').trim_end_matches('/');
            let glob = globset::GlobBuilder::new(pattern.trim_start_matches("./"))
                .literal_separator(true)
                .build()
                .map_err(|e| format!(".dockerignore: {e}"))?;
            Ok((negated, glob.compile_matcher()))
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(crate::files_under(dir)
        .into_iter()
        .filter_map(|path| path.strip_prefix(dir).ok().map(Path::to_path_buf))
        .filter(|relative| {
            let mut included = true;
            for (negated, matcher) in &patterns {
                let mut paths = relative.ancestors().filter(|p| !p.as_os_str().is_empty());
                if paths.any(|path| matcher.is_match(path)) {
                    included = *negated;
                }
            }
            included
        })
        .collect())
}

/// Replays the build stage of the project's Dockerfile (see the module
/// comment). Fails naming the missing path or the failing step.
pub fn replay(project: &Project) -> Result<(), String> {
    let dockerfile = parse(&project.read("Dockerfile"));
    let files = context(&project.dir, &project.read(".dockerignore"))?;
    let stages: Vec<(Option<String>, Vec<&Instruction>)> = {
        let mut stages = Vec::new();
        for instruction in &dockerfile {
            if instruction.keyword == "FROM" {
                let name = instruction
                    .args
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .windows(2)
                    .find(|w| w[0].eq_ignore_ascii_case("as"))
                    .map(|w| w[1].to_owned());
                stages.push((name, Vec::new()));
            } else if let Some((_, body)) = stages.last_mut() {
                body.push(instruction);
            }
        }
        stages
    };
    let [(Some(build_name), build), .., (_, last)] = stages.as_slice() else {
        return Err("Dockerfile: expected a named build stage and a final stage".into());
    };

    let scratch = crate::run_dir().join(format!("docker-{}", project.name));
    let _ = std::fs::remove_dir_all(&scratch);
    let root = scratch.join("root");
    fs_err::create_dir_all(&root).map_err(|e| e.to_string())?;
    // The replay builds in the shared target folder, so the dependencies
    // the harness built for release are reused; the project's own crates
    // are rebuilt from the replayed sources. Its binary is removed first:
    // the check at the end must find the one the replay built.
    let shared = crate::rendered_target_dir();
    let _lock = crate::project::lock_shared_target()?;
    let built = shared.join("release").join(&project.name);
    if built.exists() {
        fs_err::remove_file(&built).map_err(|e| e.to_string())?;
    }

    let at = |instruction: &Instruction| {
        format!(
            "Dockerfile line {}: {} {}",
            instruction.line, instruction.keyword, instruction.args
        )
    };
    let mut workdir = PathBuf::from("/");
    for instruction in build {
        match instruction.keyword.as_str() {
            "WORKDIR" => {
                workdir = workdir.join(&instruction.args);
                let dir = inside(&root, &workdir);
                std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", at(instruction)))?;
                let target = dir.join("target");
                if !target.exists() {
                    std::os::unix::fs::symlink(&shared, &target).map_err(|e| e.to_string())?;
                }
            }
            "COPY" => {
                let words: Vec<&str> = instruction
                    .args
                    .split_whitespace()
                    .filter(|w| !w.starts_with("--"))
                    .collect();
                let Some((destination, sources)) = words.split_last() else {
                    return Err(format!("{}: no destination", at(instruction)));
                };
                let into_folder = sources.len() > 1 || destination.ends_with('/');
                let destination = inside(&root, &workdir.join(destination));
                for source in sources {
                    copy_from_context(&project.dir, &files, source, &destination, into_folder)
                        .map_err(|e| format!("{}: {e}", at(instruction)))?;
                }
            }
            "RUN" => {
                // The build stage's environment is the image's, not ours.
                run_command(
                    own_cargo_environment(&mut Command::new("sh"))
                        .args(["-c", &instruction.args])
                        .current_dir(inside(&root, &workdir)),
                )
                .map_err(|e| format!("{} failed:\n{e}", at(instruction)))?;
            }
            "ENV" | "ARG" | "LABEL" => {}
            other => {
                return Err(format!(
                    "{}: the replay does not know {other}",
                    at(instruction)
                ));
            }
        }
    }
    for instruction in last {
        let from = format!("--from={build_name}");
        if instruction.keyword == "COPY" && instruction.args.contains(&from) {
            let words: Vec<&str> = instruction.args.split_whitespace().collect();
            let source = words[words.len() - 2];
            ensure!(
                inside(&root, Path::new(source)).exists(),
                "{}: the build stage made no {source}",
                at(instruction)
            );
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(())
}

/// `path` (absolute inside the image) under the replay's root folder.
fn inside(root: &Path, path: &Path) -> PathBuf {
    root.join(path.strip_prefix("/").unwrap_or(path))
}

/// Copies `source` (a file or folder of the context) as Docker's COPY does:
/// a folder's contents into `destination`; a file into it when
/// `into_folder` (the destination ends in `/`, or several sources).
fn copy_from_context(
    dir: &Path,
    files: &[PathBuf],
    source: &str,
    destination: &Path,
    into_folder: bool,
) -> Result<(), String> {
    let source = Path::new(source.trim_start_matches("./"));
    let chosen: Vec<&PathBuf> = files.iter().filter(|f| f.starts_with(source)).collect();
    ensure!(
        !chosen.is_empty(),
        "{} is not in the build context (missing, or left out by .dockerignore)",
        source.display()
    );
    for file in chosen {
        let target = if file.as_path() == source {
            if into_folder {
                destination.join(file.file_name().unwrap_or_default())
            } else {
                destination.to_path_buf()
            }
        } else {
            destination.join(file.strip_prefix(source).unwrap_or(file))
        };
        if let Some(parent) = target.parent() {
            fs_err::create_dir_all(parent).map_err(|e| e.to_string())?;
        }
        std::fs::copy(dir.join(file), &target)
            .map_err(|e| format!("copying {}: {e}", file.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_continuations_and_skips_comments() {
        let parsed = parse("# c\nFROM rust AS build\nRUN a \\\n    # inner\n    && b\nCOPY x y\n");
        assert_eq!(parsed.len(), 3);
        assert_eq!(parsed[1].keyword, "RUN");
        assert_eq!(parsed[1].args, "a && b");
        assert_eq!((parsed[2].line, parsed[2].args.as_str()), (6, "x y"));
    }

    #[test]
    fn dockerignore_excludes_all_but_the_exceptions() {
        let dir = crate::run_dir().join("dockerignore-test");
        for file in [
            "Cargo.toml",
            "src/main.rs",
            "deploy/a.yaml",
            "server/src/lib.rs",
            "server/tests/t.rs",
        ] {
            let path = dir.join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "").unwrap();
        }
        let files = context(&dir, "# only these\n*\n!Cargo.toml\n!src/\n!server/src/\n").unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
        assert_eq!(names, ["Cargo.toml", "server/src/lib.rs", "src/main.rs"]);
    }

    #[test]
    fn star_stays_in_a_segment_and_double_star_crosses_them() {
        let dir = crate::run_dir().join("dockerignore-globs");
        for file in ["README.md", "docs/a/README.md", "docs/b.txt", "src/x.rs"] {
            let path = dir.join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "").unwrap();
        }
        let names = |ignore: &str| -> Vec<String> {
            let files = context(&dir, ignore).unwrap();
            files.iter().map(|f| f.display().to_string()).collect()
        };
        assert_eq!(
            names("*.md"),
            ["docs/a/README.md", "docs/b.txt", "src/x.rs"]
        );
        assert_eq!(names("**/*.md"), ["docs/b.txt", "src/x.rs"]);
        assert_eq!(
            names("docs\n!docs/b.tx?"),
            ["README.md", "docs/b.txt", "src/x.rs"]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
