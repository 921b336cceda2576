//! Images built on this machine, never pulled (there is no registry here):
//! the `runtime` stage of deploy/Dockerfile over a root filesystem that
//! deploy/rootfs.sh assembles from the `vigil` binary under test, and
//! `FROM scratch` images of one host binary with the shared libraries it
//! links (e.g. Debian's `nats-server`). Each is tagged by the test with a
//! unique tag and removed when its [`Image`] guard is dropped.

use std::path::Path;
use std::process::{Command, Output};

use crate::TempDir;
use crate::fixtures::root;

/// Removes the image (by tag) when dropped, pass or fail.
#[derive(Debug)]
pub struct Image(pub String);

impl Image {
    pub fn tag(&self) -> &str {
        &self.0
    }
}

impl Drop for Image {
    fn drop(&mut self) {
        let _ = docker_output(&["image", "rm", "-f", &self.0]);
    }
}

/// Runs `docker ARGS` and returns what it did, failed or not. Builds use
/// the legacy builder: there is no buildx plugin here, and `FROM scratch`
/// needs nothing BuildKit adds.
pub fn docker_output(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .expect("run docker")
}

/// stdout and stderr of a finished command, for failure messages.
pub fn output_text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The Dockerfile's `runtime` stage, reading the root filesystem from the
/// build context (`rootfs/`) instead of the `build` stage (which pulls a
/// Rust image and is not run here).
pub fn runtime_stage() -> String {
    let dockerfile =
        std::fs::read_to_string(root().join("deploy/Dockerfile")).expect("read deploy/Dockerfile");
    let at = dockerfile
        .find("FROM scratch AS runtime")
        .expect("deploy/Dockerfile has a `FROM scratch AS runtime` stage");
    let stage = &dockerfile[at..];
    let copy = "COPY --from=build /rootfs/ /";
    assert!(stage.contains(copy), "the runtime stage copies {copy:?}");
    assert!(
        !stage.contains("RUN "),
        "the runtime stage has no shell to RUN with"
    );
    stage.replace(copy, "COPY rootfs/ /")
}

/// The project's image of `vigil` (the binary under test), tagged `tag`:
/// deploy/rootfs.sh, then the Dockerfile's `runtime` stage.
pub fn build_vigil_image(vigil: &Path, tag: &str) -> Image {
    let ctx = TempDir::new("image");
    let status = Command::new("bash")
        .arg(root().join("deploy/rootfs.sh"))
        .arg(vigil)
        .arg(ctx.join("rootfs"))
        .status()
        .expect("run deploy/rootfs.sh");
    assert!(status.success(), "deploy/rootfs.sh failed");
    std::fs::write(ctx.join("Dockerfile"), runtime_stage()).expect("write the Dockerfile");
    build(&ctx, tag)
}

/// A `FROM scratch` image holding `binary` at `/BASENAME`, every shared
/// library `ldd` names for it (at its own path: the loader's path is baked
/// into the binary), and `files` (path in the image, content), with
/// `ENTRYPOINT ["/BASENAME", ARGS…]`.
pub fn build_binary_image(
    tag: &str,
    binary: &Path,
    files: &[(&str, &str)],
    args: &[&str],
) -> Image {
    let ctx = TempDir::new("image");
    let rootfs = ctx.join("rootfs");
    let name = binary
        .file_name()
        .and_then(|n| n.to_str())
        .expect("a binary with a file name");
    copy_into(&rootfs, binary, Path::new(name));
    let ldd = Command::new("ldd").arg(binary).output().expect("run ldd");
    // `name => /path (addr)` per library, `/path (addr)` for the loader;
    // a static binary prints "not a dynamic executable" and fails.
    for lib in String::from_utf8_lossy(&ldd.stdout)
        .split_whitespace()
        .filter(|w| w.starts_with('/'))
    {
        let lib = Path::new(lib);
        copy_into(&rootfs, lib, lib.strip_prefix("/").unwrap_or(lib));
    }
    for (path, content) in files {
        let to = rootfs.join(path.trim_start_matches('/'));
        std::fs::create_dir_all(to.parent().expect("a file path has a parent"))
            .expect("create the image's directories");
        std::fs::write(&to, content).unwrap_or_else(|e| panic!("write {}: {e}", to.display()));
    }
    let mut entry = vec![format!("/{name}")];
    entry.extend(args.iter().map(|a| (*a).to_owned()));
    let entry = serde_json::to_string(&entry).expect("strings encode");
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("FROM scratch\nCOPY rootfs/ /\nENTRYPOINT {entry}\n"),
    )
    .expect("write the Dockerfile");
    build(&ctx, tag)
}

/// Copies `from` to `rootfs/to`, following links (a library is often a link).
fn copy_into(rootfs: &Path, from: &Path, to: &Path) {
    let dest = rootfs.join(to);
    std::fs::create_dir_all(dest.parent().expect("a file path has a parent"))
        .expect("create the image's directories");
    std::fs::copy(from, &dest)
        .unwrap_or_else(|e| panic!("copy {} to {}: {e}", from.display(), dest.display()));
}

fn build(ctx: &Path, tag: &str) -> Image {
    let image = Image(tag.to_owned());
    let built = docker_output(&[
        "build",
        "-q",
        "-t",
        tag,
        ctx.to_str().expect("a UTF-8 temporary path"),
    ]);
    assert!(
        built.status.success(),
        "docker build: {}",
        output_text(&built)
    );
    image
}
