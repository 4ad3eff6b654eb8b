package main

// Offline checks of the container image (deploy/Dockerfile): no container
// builder is needed. The image itself is built by `make image` where docker,
// podman or buildah works.

import (
	"bufio"
	"bytes"
	"debug/elf"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "go.work")); err != nil {
		t.Fatalf("repository root: %v", err)
	}
	return dir
}

// instruction is one Dockerfile instruction (continuation lines joined).
type instruction struct {
	cmd  string // upper case: FROM, RUN, ...
	args string
}

type stage struct {
	from  string // the image, with ARG defaults substituted
	name  string
	instr []instruction
}

// parseDockerfile splits the file into its global ARGs and stages.
func parseDockerfile(t *testing.T, path string) (map[string]string, []stage) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	var cur strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(l, "#") || (l == "" && cur.Len() == 0) {
			continue
		}
		if s, ok := strings.CutSuffix(l, "\\"); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(l)
		lines = append(lines, cur.String())
		cur.Reset()
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	global := map[string]string{}
	var stages []stage
	argRE := regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?`)
	for _, l := range lines {
		cmd, args, _ := strings.Cut(l, " ")
		in := instruction{strings.ToUpper(cmd), strings.TrimSpace(args)}
		switch {
		case in.cmd == "ARG" && len(stages) == 0:
			k, v, _ := strings.Cut(in.args, "=")
			global[k] = v
		case in.cmd == "FROM":
			fields := strings.Fields(in.args)
			s := stage{from: argRE.ReplaceAllStringFunc(fields[0], func(ref string) string {
				return global[strings.Trim(ref, "${}")]
			})}
			if len(fields) == 3 && strings.EqualFold(fields[1], "AS") {
				s.name = fields[2]
			}
			stages = append(stages, s)
		case len(stages) > 0:
			stages[len(stages)-1].instr = append(stages[len(stages)-1].instr, in)
		}
	}
	return global, stages
}

// TestDockerfile checks deploy/Dockerfile: a build stage that makes the
// binary with scripts/build-static.sh, and a final stage on distroless
// static (or scratch) that needs no shell, runs as a non-root numeric user,
// starts uias in exec form and carries the OCI labels.
func TestDockerfile(t *testing.T) {
	root := repoRoot(t)
	_, stages := parseDockerfile(t, filepath.Join(root, "deploy", "Dockerfile"))
	if len(stages) < 2 {
		t.Fatalf("%d stages, want a build stage and a final stage", len(stages))
	}
	built := false
	for _, s := range stages[:len(stages)-1] {
		for _, in := range s.instr {
			if in.cmd == "RUN" && strings.Contains(in.args, "scripts/build-static.sh /out/uias") {
				built = true
			}
		}
	}
	if !built {
		t.Error("no build stage runs scripts/build-static.sh /out/uias (the static libargon2 build TestStaticImageBinary checks)")
	}

	final := stages[len(stages)-1]
	if !strings.HasPrefix(final.from, "gcr.io/distroless/static") && final.from != "scratch" {
		t.Errorf("final stage FROM %q, want distroless static or scratch", final.from)
	}
	var user, entrypoint string
	labels := map[string]string{}
	args := map[string]bool{}
	copied := false
	for _, in := range final.instr {
		switch in.cmd {
		case "RUN", "SHELL", "ONBUILD":
			t.Errorf("final stage has %s %s: it must need no shell", in.cmd, in.args)
		case "USER":
			user = in.args
		case "ENTRYPOINT":
			entrypoint = in.args
		case "ARG":
			k, _, _ := strings.Cut(in.args, "=")
			args[k] = true
		case "LABEL":
			for _, m := range regexp.MustCompile(`([a-z.]+)="([^"]*)"`).FindAllStringSubmatch(in.args, -1) {
				labels[m[1]] = m[2]
			}
		case "COPY":
			if strings.Contains(in.args, "--from=build") && strings.Contains(in.args, "/out/uias /usr/local/bin/uias") {
				copied = true
			}
		}
	}
	if !copied {
		t.Error("final stage does not copy /out/uias from the build stage to /usr/local/bin/uias")
	}
	uid, _, _ := strings.Cut(user, ":")
	if n, err := strconv.Atoi(uid); err != nil || n == 0 {
		t.Errorf("USER %q: want a numeric non-root uid (Kubernetes runAsNonRoot checks a numeric user)", user)
	}
	var ep []string
	if err := json.Unmarshal([]byte(entrypoint), &ep); err != nil || len(ep) == 0 || ep[0] != "/usr/local/bin/uias" {
		t.Errorf("ENTRYPOINT %s: want the exec form [\"/usr/local/bin/uias\"] (no shell)", entrypoint)
	}
	for label, arg := range map[string]string{
		"org.opencontainers.image.version":  "VERSION",
		"org.opencontainers.image.revision": "REVISION",
		"org.opencontainers.image.source":   "SOURCE",
	} {
		if labels[label] != "${"+arg+"}" || !args[arg] {
			t.Errorf("LABEL %s=%q: want \"${%s}\" from an ARG %s of the final stage", label, labels[label], arg, arg)
		}
	}
}

// TestStaticImageBinary builds uias as the image's build stage does
// (scripts/build-static.sh: libargon2, cgo, linked statically) and checks
// that the result needs nothing from the image: no ELF interpreter, no
// shared library. It needs libargon2-dev (scripts/install-libargon2.sh) and
// is skipped, saying why, where that is missing.
func TestStaticImageBinary(t *testing.T) {
	root := repoRoot(t)
	if out, err := exec.Command(filepath.Join(root, "scripts", "buildtags.sh"), "--probe").CombinedOutput(); err != nil {
		t.Skipf("the libargon2 build cannot be made here: %s", bytes.TrimSpace(out))
	}
	bin := filepath.Join(t.TempDir(), "uias")
	cmd := exec.Command(filepath.Join(root, "scripts", "build-static.sh"), bin, "v0.0.0-imagetest")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("scripts/build-static.sh: %v\n%s", err, out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		switch p.Type {
		case elf.PT_INTERP:
			t.Error("the binary has an ELF interpreter (PT_INTERP): it is dynamically linked and needs a libc in the image")
		case elf.PT_DYNAMIC:
			t.Error("the binary has a dynamic section (PT_DYNAMIC)")
		}
	}
	if libs, err := f.ImportedLibraries(); err != nil {
		t.Fatal(err)
	} else if len(libs) > 0 {
		t.Errorf("the binary needs shared libraries %v", libs)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(data, []byte("libargon2 (C reference implementation, cgo)")) {
		t.Error("the binary does not hash with libargon2 (pkg/crypto Argon2Implementation of the libargon2 build is missing)")
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "uias v0.0.0-imagetest") {
		t.Errorf("uias version: %v: %q", err, out)
	}
}

// TestMakeImageWithoutBuilder: where no container builder works, make image
// (scripts/image.sh) fails and says which builder is missing or unusable.
// A docker client without a daemon counts as unusable.
func TestMakeImageWithoutBuilder(t *testing.T) {
	root := repoRoot(t)
	for _, b := range []string{"podman", "buildah"} {
		for _, dir := range []string{"/usr/bin", "/bin"} {
			if _, err := os.Stat(filepath.Join(dir, b)); err == nil {
				t.Skipf("%s is installed in %s", b, dir)
			}
		}
	}
	fake := t.TempDir()
	docker := "#!/bin/sh\necho 'Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?' >&2\nexit 1\n"
	if err := os.WriteFile(filepath.Join(fake, "docker"), []byte(docker), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(root, "scripts", "image.sh"))
	cmd.Env = append(os.Environ(), "PATH="+fake+":/usr/bin:/bin")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("scripts/image.sh: %v, want exit status 1\n%s", err, out)
	}
	for _, want := range []string{
		"no container builder works on this machine, so no image was built",
		"docker: installed but not usable (Cannot connect to the Docker daemon",
		"podman: not installed",
		"buildah: not installed",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// TestImageBuildIsStaticLibargon2 checks, without building, what the
// image's build stage runs where no container builder or libargon2-dev is
// available (TestStaticImageBinary builds it where the library is): the
// stage installs libargon2-dev (the opt-in C build) before building, and
// scripts/build-static.sh builds with cgo, -tags libargon2 with the pure-Go
// resolver and user lookup, linked externally and statically, reproducibly
// (-trimpath, no VCS stamping), and stops when the library is missing.
// The build context leaves out local build output and the git directory.
func TestImageBuildIsStaticLibargon2(t *testing.T) {
	root := repoRoot(t)
	_, stages := parseDockerfile(t, filepath.Join(root, "deploy", "Dockerfile"))
	var order []string
	for _, s := range stages[:len(stages)-1] {
		for _, in := range s.instr {
			switch {
			case in.cmd == "COPY" && strings.HasPrefix(in.args, "scripts/ "):
				order = append(order, "copy scripts")
			case in.cmd == "RUN" && strings.Contains(in.args, "scripts/install-libargon2.sh"):
				order = append(order, "install libargon2")
			case in.cmd == "RUN" && strings.Contains(in.args, "scripts/build-static.sh"):
				order = append(order, "build")
			}
		}
	}
	if want := []string{"copy scripts", "install libargon2", "build"}; strings.Join(order, ",") != strings.Join(want, ",") {
		t.Errorf("build stage steps %q, want %q", order, want)
	}

	script, err := os.ReadFile(filepath.Join(root, "scripts", "build-static.sh"))
	if err != nil {
		t.Fatal(err)
	}
	var build string
	for _, l := range strings.Split(strings.ReplaceAll(string(script), "\\\n", " "), "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "go build") {
			build = l
		}
	}
	for _, want := range []string{"-trimpath", "-tags libargon2,netgo,osusergo", "-linkmode=external",
		"-extldflags=-static", "./cmd/uias"} {
		if !strings.Contains(build, want) {
			t.Errorf("scripts/build-static.sh: go build lacks %s: %s", want, strings.TrimSpace(build))
		}
	}
	for _, want := range []string{"CGO_ENABLED=1", "-buildvcs=false", "LIBARGON2=1 scripts/buildtags.sh"} {
		if !bytes.Contains(script, []byte(want)) {
			t.Errorf("scripts/build-static.sh lacks %s", want)
		}
	}

	ignore, err := os.ReadFile(filepath.Join(root, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Fields(string(ignore))
	for _, want := range []string{".git", "bin", ".bin", "data"} {
		if !slices.Contains(lines, want) {
			t.Errorf(".dockerignore does not leave out %s", want)
		}
	}
}
